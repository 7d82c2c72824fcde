"""Phrase the chosen action: the LLM writes one or two sentences; a template answers when it cannot."""

from __future__ import annotations

import re
from collections.abc import Callable

from agent.llm import ChatModel, TokenCallback
from agent.prompts import PromptTemplate
from agent.step import llm_step
from agent.state import Action, ConvState, LLMCallTrace

MAX_CHARS = 320
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_THE_USERS = re.compile(r"\bthe user(?:'s|\u2019s|s')", re.IGNORECASE)
_THE_USER = re.compile(r"\b(?:the )?users?\b", re.IGNORECASE)


def template_text(action: Action, state: ConvState) -> str:
    """The non-LLM phrasing: always correct, a little plain."""
    if action.kind == "ask" and action.attribute is not None:
        attr = action.attribute
        noun = {"decade": "from the", "year": "from"}.get(attr.type)
        if noun:
            return f"Would you like something {noun} {attr.value}?"
        return f"Are you in the mood for something {attr.type} \u201c{attr.value}\u201d?"
    if not action.items:
        return "I could not find anything that fits all of that. Could you tell me something else you like?"
    if state.accepted:
        wanted = ", ".join(a.value for a in state.accepted)
        return f"Here are some picks that match {wanted}:"
    return "Here are some popular picks to start with:"


def clean_llm_text(text: str) -> str:
    """Keep at most two plain sentences; strip quotes and list markup the model sometimes adds."""
    text = text.strip().strip('"').strip()
    text = re.sub(r"^(reply|assistant)\s*:\s*", "", text, flags=re.IGNORECASE)
    first_lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(("-", "*"))]
    text = " ".join(first_lines[:2])
    sentences = _SENTENCE_END.split(text)
    text = " ".join(sentences[:2]).strip()
    return text[:MAX_CHARS].rstrip()


def phrase(
    action: Action,
    state: ConvState,
    user_text: str,
    *,
    model: ChatModel | None,
    prompt: PromptTemplate,
    timeout_s: float,
    max_tokens: int,
    on_token: TokenCallback | None = None,
    check: Callable[[str], list] | None = None,
) -> tuple[str, LLMCallTrace | None, str | None]:
    """Return (lead text, the LLM call's trace or None, fallback reason or None). `check` lists what is
    wrong with a recommendation lead (agent/reply_check.py); a lead it faults is re-asked once with the
    reason, then the template answers."""
    if model is None:
        return template_text(action, state), None, None
    variables = dict(
        action=action.kind,
        attribute=f"{action.attribute.type} = {action.attribute.value}" if action.attribute else "",
        value=action.attribute.value if action.attribute else "",
        items=[f"{r.title} ({r.reason})" for r in action.items],
        titles=[r.title for r in action.items],
        accepted=[a.value for a in state.accepted],
        rejected=[a.value for a in state.rejected],
        user_text=user_text[:500],
    )
    step = llm_step(model, prompt, purpose="reply", variables=variables, output=None, max_tokens=max_tokens,
                    timeout_s=timeout_s, on_token=on_token, validate=lambda text: _checked(text, action, check))
    if step.fallback is not None:
        return template_text(action, state), step.trace, str(step.fallback)
    return step.value, step.trace, None


def _checked(text: str, action: Action, check: Callable[[str], list] | None = None) -> str:
    """The cleaned sentence, or ValueError saying why the template must answer instead."""
    text = _THE_USERS.sub(lambda m: "Your" if m.group(0)[0].isupper() else "your", clean_llm_text(text))
    if not text:
        raise ValueError("empty LLM text")
    if _THE_USER.search(text):
        # The lead speaks to the person: "the user's" reads as "your" above; any other "the user" is refused.
        raise ValueError("speaks of the user, not to them")
    if action.kind == "ask" and "?" not in text:
        # A small model sometimes answers its own question ("Yes, they want 1990s."): the user must see one.
        raise ValueError("not a question")
    if action.kind == "ask" and action.attribute is not None and not mentions(text, action.attribute.value):
        # ... or asks about another attribute (one the user just declined, say): ask the chosen one.
        raise ValueError("asks about another attribute")
    if action.kind == "recommend" and check is not None:
        faults = check(text)
        if faults:
            raise ValueError("; ".join(str(f) for f in faults))
    return text


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def mentions(text: str, value: str) -> bool:
    """Does the text name the attribute value? Every word of 3+ characters of it (a plural or a decade's
    short form such as "90s" for "1990s" counts)."""
    said = set(_words(text))
    said |= {w[:-1] for w in said if w.endswith("s")} | {w[:-2] for w in said if w.endswith("es")}
    needed = [w for w in _words(value) if len(w) >= 3] or _words(value)
    for word in needed:
        forms = {word, word[:-1] if word.endswith("s") else word + "s"}
        if re.fullmatch(r"\d{4}s", word):
            forms |= {word[2:], word[2:-1], word[:-1]}
        if not forms & said:
            return False
    return bool(needed)
