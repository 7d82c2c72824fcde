"""The Gradio chat UI: a thin adapter over ConversationService (per-browser session state, never globals)."""

from __future__ import annotations

import html
import logging
import queue
import re
import threading
from collections.abc import Iterator
from typing import Any

import gradio as gr

from conversation.service import ConversationService
from agent.state import TurnResult
from conversation.store import UnknownSession

_DONE = object()
log = logging.getLogger(__name__)
QUICK_SLOTS = 4  # the policy offers three answers; one spare slot so a fourth option would still show

CARD_CSS = """
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 10px; }
.card { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px 12px;
        background: var(--background-fill-secondary); }
.card:focus-visible { outline: 3px solid #ffb400; outline-offset: 2px; }
.card .title { font-weight: 600; display: block; margin-bottom: 4px; }
.card ul { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: 4px; }
.card li { font-size: 12px; border-radius: 999px; padding: 1px 8px; background: var(--color-accent-soft); }
.empty { color: var(--body-text-color-subdued); font-size: 14px; }
"""
NO_CARDS = '<p class="empty">Recommendations will appear here as cards.</p>'
TRACE_HINT = "The trace of each turn (tools called, LLM calls, latency) appears here."


def cards_html(result: TurnResult) -> str:
    """Recommended items as cards, each with the reasons grounded in its attributes (all text escaped)."""
    if result.action.kind != "recommend" or not result.action.items:
        return NO_CARDS
    cards = []
    for n, rec in enumerate(result.action.items, 1):
        reasons = rec.reasons or [rec.reason]
        chips = "".join(f"<li>{html.escape(r)}</li>" for r in reasons)
        label = html.escape(f"{rec.title}: {', '.join(reasons)}", quote=True)
        cards.append(
            f'<article class="card" tabindex="0" aria-label="{label}" data-item-id="{html.escape(rec.item_id)}">'
            f'<span class="title">{n}. {html.escape(rec.title)}</span><ul aria-label="Why">{chips}</ul></article>'
        )
    return f'<section class="cards" aria-label="Recommendations">{"".join(cards)}</section>'


def chat_text(result: TurnResult) -> str:
    """The bot's message in the transcript: the lead sentence, then the items as a short numbered list."""
    if not result.action.items:
        return _plain(result.text)
    titles = "\n".join(f"{n}. {r.title}" for n, r in enumerate(result.action.items, 1))
    return _plain(f"{result.lead}\n\n{titles}")


def _plain(text: str) -> str:
    """Text for the transcript, which renders neither Markdown nor (once escaped) HTML from data or the LLM."""
    return html.escape(text, quote=False)


def trace_markdown(result: TurnResult) -> str:
    """The trace panel: what was understood, tools called, LLM calls, fallbacks and latency."""
    trace = result.trace
    asked = f" about **{_cell(str(result.action.attribute))}**" if result.action.attribute else ""
    understood = "; ".join(f"{key}: {_cell(str(value))}" for key, value in trace.understood.items() if value)
    lines = [
        f"**Turn {result.turn}**: {result.action.kind}{asked} in **{trace.latency_s * 1000:.0f} ms**, "
        f"{trace.candidates:,} candidates" + (" (degraded)" if trace.degraded else ""),
        "",
        f"Understood: {understood or 'nothing new'}",
        "",
        f"**Tools called** ({len(trace.tool_calls)})",
        "",
        *(f"- `{c.name}` {c.latency_s * 1000:.0f} ms: {_cell(c.observation)}" for c in trace.tool_calls),
        "",
        f"**LLM calls** ({len(trace.llm_calls)})",
        "",
        *(
            f"- {c.purpose}: {_cell(c.model)}, `{c.prompt_id}`, {c.prompt_tokens} → {c.completion_tokens} tokens, "
            f"{c.latency_s * 1000:.0f} ms" + ("" if c.ok else f", **failed**: {_cell(c.error or '')}")
            for c in trace.llm_calls
        ),
    ]
    if trace.fallbacks:
        lines += ["", "**Fallbacks:** " + "; ".join(_cell(f) for f in trace.fallbacks)]
    return "\n".join(lines)


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&:])")


def _cell(text: str) -> str:
    """Catalog, person or LLM text inside the Markdown panels: one line, every Markdown and HTML character
    backslash-escaped, so it shows as the characters it is (no image, link, heading or tag from data)."""
    return _MARKDOWN.sub(r"\\\1", text.replace("\n", " ")[:160])


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


def _quick_updates(result: TurnResult | None) -> list[Any]:
    """Caption and buttons for the asked attribute, or everything hidden."""
    asking = result is not None and result.action.kind == "ask" and bool(result.action.options)
    if not asking:
        return [gr.update(visible=False), gr.update(value="")] + [gr.update(visible=False)] * QUICK_SLOTS
    attr, options = result.action.attribute, result.action.options[:QUICK_SLOTS]
    caption = f"Quick reply about **{_cell(attr.type)}: {_cell(attr.value)}**" if attr else "Quick reply"
    buttons = [gr.update(value=options[i], visible=True) if i < len(options) else gr.update(visible=False)
               for i in range(QUICK_SLOTS)]
    return [gr.update(visible=True), gr.update(value=caption)] + buttons


def make_handler(service: ConversationService):
    """The per-message generator; all per-user state arrives as arguments (gr.State), none is kept here."""

    def on_message(text: str, history: list[dict] | None, session_id: str | None):
        text = (text or "").strip()
        history = list(history or [])
        if not text:
            yield [history, session_id, gr.update(), gr.update(), gr.update(), gr.update()] + _quick_updates(None)
            return
        if session_id is None:
            session_id = service.start()
        history += [{"role": "user", "content": _plain(text)}, {"role": "assistant", "content": ""}]
        yield [history, session_id, "", gr.update(), gr.update(), gr.update()] + _quick_updates(None)
        try:
            streamed = ""
            for part in _stream_or_restart(service, session_id, text):
                if isinstance(part, TurnResult):
                    history[-1] = {"role": "assistant", "content": chat_text(part)}
                    yield [history, part.session_id, "", cards_html(part), trace_markdown(part),
                           part.trace.model_dump(mode="json")] + _quick_updates(part)
                    return
                streamed += part
                history[-1] = {"role": "assistant", "content": _plain(streamed)}
                yield [history, session_id, "", gr.update(), gr.update(), gr.update()] + [gr.update()] * (
                    QUICK_SLOTS + 2)
        except Exception as exc:  # logged with its traceback, shown to this user as a short error toast
            log.exception("turn failed in the Gradio UI")
            raise gr.Error(f"The assistant had a problem: {type(exc).__name__}. Please try again.") from exc

    return on_message


def _stream_or_restart(service: ConversationService, session_id: str, text: str) -> Iterator[str | TurnResult]:
    """Stream the turn; if the store forgot this browser's session (restart, expiry), continue in a new one."""
    try:
        service.state(session_id)
    except UnknownSession:
        session_id = service.start()
    return stream_turn(service, session_id, text)


def build_ui(service: ConversationService) -> gr.Blocks:
    """The chat page: conversation, quick replies for the asked attribute, item cards and a trace panel."""
    with gr.Blocks(title="Concierge") as demo:
        gr.Markdown(f"## Concierge\nAsk for something from **{_cell(service.catalog.name)}** "
                    f"({len(service.catalog):,} items).")
        session = gr.State(None)  # this browser tab's conversation id: per user, never a module global
        with gr.Row():
            with gr.Column(scale=3):
                # Plain text: the transcript holds the person's words, catalog titles and the LLM's sentence.
                chatbot = gr.Chatbot(label="Conversation", height=440, elem_id="chat", feedback_options=None,
                                     render_markdown=False, sanitize_html=True)
                with gr.Row(visible=False, elem_id="quick-replies") as quick_row:
                    caption = gr.Markdown(elem_id="asked")
                    quick = [gr.Button("", size="sm", visible=False, min_width=80) for _ in range(QUICK_SLOTS)]
                with gr.Row():
                    box = gr.Textbox(placeholder="e.g. a funny animated movie, not too old", show_label=False,
                                     elem_id="message", scale=5, max_length=2000)
                    send = gr.Button("Send", variant="primary", elem_id="send", scale=1, min_width=80)
                    restart = gr.Button("New chat", elem_id="restart", scale=1, min_width=80)
                cards = gr.HTML(NO_CARDS, css_template=CARD_CSS, elem_id="cards")
            with gr.Column(scale=2):
                trace_md = gr.Markdown(TRACE_HINT, elem_id="trace", label="Trace")
                with gr.Accordion("Full trace (JSON)", open=False):
                    trace_json = gr.JSON(label="Trace (last turn)")

        handler = make_handler(service)
        outputs = [chatbot, session, box, cards, trace_md, trace_json, quick_row, caption, *quick]
        box.submit(handler, [box, chatbot, session], outputs)
        send.click(handler, [box, chatbot, session], outputs)
        for button in quick:
            button.click(handler, [button, chatbot, session], outputs)
        restart.click(lambda: [[], None, "", NO_CARDS, TRACE_HINT, None] + _quick_updates(None), None, outputs,
                      queue=False)  # nothing slow to wait for: skip the queue
    return demo
