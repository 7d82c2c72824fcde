"""The Gradio chat UI: a thin adapter over ConversationService (per-browser session state, never globals)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import gradio as gr

from conversation.service import ConversationService
from conversation.state import TurnResult

_DONE = object()


def _items_markdown(result: TurnResult) -> str:
    if result.action.kind != "recommend" or not result.action.items:
        return ""
    lines = [f"**{n}. {r.title}**  \n<small>{r.reason}</small>" for n, r in enumerate(result.action.items, 1)]
    return "\n\n".join(lines)


def _trace_summary(result: TurnResult) -> dict[str, Any]:
    trace = result.trace
    return {
        "action": result.action.kind,
        "asked": str(result.action.attribute) if result.action.attribute else None,
        "understood": trace.understood,
        "candidates": trace.candidates,
        "llm_calls": [c.model_dump() for c in trace.llm_calls],
        "fallbacks": trace.fallbacks,
        "degraded": trace.degraded,
        "latency_s": round(trace.latency_s, 3),
    }


def stream_turn(service: ConversationService, session_id: str, text: str) -> Iterator[str | TurnResult]:
    """Run one turn in a worker thread, yielding text chunks as they come and then the TurnResult."""
    chunks: queue.Queue[object] = queue.Queue()

    def work() -> None:
        try:
            chunks.put(service.respond(session_id, text, on_token=chunks.put))
        except BaseException as exc:  # handed to the caller's thread, re-raised there
            chunks.put(exc)
        finally:
            chunks.put(_DONE)

    threading.Thread(target=work, daemon=True).start()
    while (chunk := chunks.get()) is not _DONE:
        if isinstance(chunk, BaseException):
            raise chunk
        yield chunk  # type: ignore[misc]


def build_ui(service: ConversationService) -> gr.Blocks:
    """The chat page: conversation, quick replies for the asked attribute, and a trace panel."""
    with gr.Blocks(title="Concierge") as demo:
        gr.Markdown(f"## Concierge\nAsk for something from **{service.catalog.name}** ({len(service.catalog):,} items).")
        session = gr.State(None)
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Conversation", height=520, elem_id="chat")
                with gr.Row(visible=False, elem_id="quick-replies") as quick_row:
                    quick = [gr.Button(label, size="sm") for label in ("Yes", "No", "Doesn't matter")]
                box = gr.Textbox(
                    placeholder="e.g. a funny animated movie, not too old", show_label=False, elem_id="message"
                )
                send = gr.Button("Send", variant="primary", elem_id="send")
            with gr.Column(scale=1):
                trace_panel = gr.JSON(label="Trace (last turn)")

        def on_message(text: str, history: list[dict], session_id: str | None):
            history = list(history or [])
            if session_id is None:
                session_id = service.start()
            history.append({"role": "user", "content": text})
            history.append({"role": "assistant", "content": ""})
            yield history, session_id, "", gr.update(visible=False), gr.update()
            streamed = ""
            for part in stream_turn(service, session_id, text):
                if isinstance(part, TurnResult):
                    lead = part.text.split("\n", 1)[0] if part.action.items else part.text
                    cards = _items_markdown(part)
                    history[-1] = {"role": "assistant", "content": f"{lead}\n\n{cards}" if cards else lead}
                    asking = part.action.kind == "ask"
                    yield history, session_id, "", gr.update(visible=asking), _trace_summary(part)
                    return
                streamed += part
                history[-1] = {"role": "assistant", "content": streamed}
                yield history, session_id, "", gr.update(), gr.update()

        outputs = [chatbot, session, box, quick_row, trace_panel]
        box.submit(on_message, [box, chatbot, session], outputs)
        send.click(on_message, [box, chatbot, session], outputs)
        for button in quick:
            button.click(on_message, [button, chatbot, session], outputs)
    return demo
