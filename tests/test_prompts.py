import pytest

from agent.prompts import PromptError, known_prompts, load_prompt

SAMPLE = {
    "reply": dict(action="recommend", attribute="", items=["Toy Story (1995) (Comedy)"],
                  titles=["Toy Story (1995)"], value="", accepted=["Comedy"],
                  rejected=[], user_text="funny"),
    "extract": dict(text="a comedy, not horror", options=["Comedy", "Horror"]),
    "translate": dict(text="Ich suche einen lustigen Film"),
    "planner": dict(accepted=["Comedy"], rejected=[], wishes=["something light"], count=120, attributes=["Animation"],
                    candidates=["Toy Story (1995)"], can_search=True, list_size=5, advice="ask A1"),
    "rerank": dict(wishes=[], accepted=["Comedy"], rejected=[], n=1,
                   candidates=[{"n": 1, "title": "Toy Story (1995)", "attributes": ["Comedy"]}]),
    "rerank_fewshot": dict(wishes=[], accepted=["Comedy"], rejected=[], n=1,
                           candidates=[{"n": 1, "title": "Toy Story (1995)", "attributes": ["Comedy"]}]),
    "simulator": dict(persona="a casual movie fan, patient, happy to answer questions", style="Write one short sentence.",
                      wants=["Horror"], avoids=["Comedy"], wishes="something creepy", learned=["you said no to 1990s"],
                      mood="content", agent_text="Would you like something from the 1980s?", task="Say yes."),
    "judge": dict(need="must be Horror", transcript=[{"role": "user", "text": "a horror film"}],
                  items=[{"title": "Alien (1979)", "attributes": ["Horror", "Sci-Fi"]}]),
}


@pytest.mark.parametrize("prompt_id", known_prompts())
def test_every_prompt_loads_and_renders(prompt_id):
    prompt = load_prompt(prompt_id)
    sample = SAMPLE[prompt_id.split(".")[0]]
    messages = prompt.render(**{k: v for k, v in sample.items() if k in prompt.variables})  # planner: a subset
    assert messages[0].role == "system" and messages[1].role == "user"
    assert all(m.content for m in messages)


def test_unknown_prompt_lists_known_ones():
    with pytest.raises(PromptError, match="reply.v1"):
        load_prompt("reply.v99")


def test_missing_variable_is_an_error():
    with pytest.raises(PromptError, match="missing"):
        load_prompt("reply.v1").render(action="ask")


@pytest.mark.parametrize("prompt_id", ["reply.v1", "reply.v2", "reply.v3"])
def test_catalog_text_is_marked_as_data(prompt_id):
    text = load_prompt(prompt_id).render(**SAMPLE["reply"])[1].content
    assert "<data>" in text and "Toy Story" in text
