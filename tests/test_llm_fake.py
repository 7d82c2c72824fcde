import pytest

from agent.llm import ChatReply, Message, ScriptedChatModel, ScriptExhausted, ToolCall, LLMUnavailable


def test_scripted_model_replays_records_and_fails_on_extra_call():
    model = ScriptedChatModel(["one", ChatReply(text="", tool_calls=[ToolCall(id="c1", name="search", arguments={"q": "x"})]),
                               lambda req: f"echo {req.messages[-1].content}", LLMUnavailable("down")])
    msg = [Message(role="user", content="hi")]
    assert model.chat(msg).text == "one"
    assert model.chat(msg).tool_calls[0].name == "search"
    assert model.chat(msg).text == "echo hi"
    with pytest.raises(LLMUnavailable):
        model.chat(msg)
    with pytest.raises(ScriptExhausted):
        model.chat(msg)
    assert len(model.calls) == 5 and model.calls[0].messages[0].content == "hi"


def test_scripted_model_streams_its_text():
    chunks = []
    reply = ScriptedChatModel(["a longer reply text"]).chat([Message(role="user", content="x")], on_token=chunks.append)
    assert "".join(chunks) == reply.text and len(chunks) > 1
