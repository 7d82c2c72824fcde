"""The LLM user simulator (RecoWorld-style): a persona with a hidden need and a mindset, talking in free text.

It reads the agent's text and the item cards shown (ids, as the UI shows them), decides by code what to
do (evals/simulators/mindset.py: accept, reject, answer, reflect, leave), and lets its chat model phrase
that in the persona's words. A leakage guard keeps the target's title out of its text: a reply that names
it is regenerated once, then redacted, and both are counted. Without a model it speaks in templates.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence

from agent.llm import ChatModel, LLMError
from agent.prompts import load_prompt
from agent.state import Attr
from retrieval.catalog import item_attrs as attributes_of
from evals.sim_cases import SimCase
from evals.simulators import ShownItem, SimReply
from evals.simulators.leakage import find_leak, redact
from evals.simulators.mindset import STYLE, Intent, Mind, describe

DEFAULT_PROMPT = "simulator.v1"
MAX_AGENT_CHARS = 700
MAX_REPLY_CHARS = 300
MAX_TOKENS = {"terse": 32, "normal": 60, "chatty": 90}
NO_TITLES = " Do not name any title; describe what you want instead."
_PREFIX = re.compile(r"^\s*(you|user|me|person)\s*:\s*", re.IGNORECASE)


def clean_reply(text: str) -> str:
    """One plain paragraph: no role prefix, quotes or extra lines, at most MAX_REPLY_CHARS."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    text = _PREFIX.sub("", lines[0] if lines else "").strip().strip('"').strip()
    return text[:MAX_REPLY_CHARS].rstrip()


class LLMUserSimulator:
    """One simulated user for one session; `model=None` phrases every intent by template."""

    def __init__(
        self,
        case: SimCase,
        *,
        model: ChatModel | None,
        item_attributes: Callable[[str], set[Attr]],
        seed: int,
        prompt_id: str = DEFAULT_PROMPT,
        timeout_s: float = 60.0,
    ) -> None:
        self.case = case
        self.model = model
        self.mind = Mind(case, seed=seed, item_attributes=item_attributes)
        self.prompt = load_prompt(prompt_id)
        self.prompt_id = self.prompt.id
        self.model_name = model.name if model is not None else "template"
        self.timeout_s = timeout_s
        self.shown_targets: set[str] = set()  # target ids the agent has shown

    def opening(self) -> SimReply:
        """The first message: what the user is looking for."""
        return self._say(self.mind.opening(), agent_text="(The chat has just opened.)")

    def react(self, agent_text: str, shown: Sequence[ShownItem]) -> SimReply:
        """Read one agent turn (text and cards) and answer it."""
        for item in shown:
            if item.item_id in self.case.need.target_ids:
                self.shown_targets.add(item.item_id)
        calls = SimReply(text="")
        choice = self._soft_choice(shown, agent_text, calls) if shown and not self.mind.by_ids else None
        reply = self._say(self.mind.react(agent_text, shown, soft_choice=choice), agent_text=agent_text)
        return reply.model_copy(update={"tokens": reply.tokens + calls.tokens, "llm_calls": reply.llm_calls + calls.llm_calls,
                                        "latency_s": reply.latency_s + calls.latency_s,
                                        "fallbacks": calls.fallbacks + reply.fallbacks})

    def _soft_choice(self, shown: Sequence[ShownItem], agent_text: str, calls: SimReply) -> str | None:
        """For a need without ids: the shown item that fits the soft wishes (code filters, the LLM picks)."""
        fitting = [s for s in shown if self.mind.fits(s.item_id)]
        if not fitting or self.model is None or not self.case.need.soft:
            return fitting[0].item_id if fitting else None
        options = "; ".join(f"{n}. {s.title}" for n, s in enumerate(fitting, 1))
        task = f"Which option fits your wishes? Options: {options}. Answer with JSON {{\"pick\": number}}, 0 if none."
        schema = {"type": "object", "properties": {"pick": {"type": "integer", "enum": list(range(len(fitting) + 1))}},
                  "required": ["pick"]}
        text = self._phrase(Intent(task=task, template=""), agent_text, calls, json_schema=schema)
        try:
            pick = int(json.loads(text)["pick"]) if text else 0
        except (ValueError, KeyError, TypeError):
            calls.fallbacks.append("simulator: invalid soft pick")
            return None
        return fitting[pick - 1].item_id if 1 <= pick <= len(fitting) else None

    def _guarded_titles(self) -> list[str]:
        """Target titles the agent has not shown yet: the user must not say them."""
        need = self.case.need
        return [t for i, t in zip(need.target_ids, need.target_titles) if i not in self.shown_targets]

    def _say(self, intent: Intent, *, agent_text: str) -> SimReply:
        reply = SimReply(text=intent.template, accepted_id=intent.accepted_id, leave=intent.leave,
                         reflection=intent.reflection)
        titles = self._guarded_titles()
        if self.model is not None:
            reply.text = self._phrase(intent, agent_text, reply) or intent.template
            if titles and find_leak(reply.text, titles):
                reply.leaks += 1
                reply.text = self._phrase(intent, agent_text, reply, task_suffix=NO_TITLES) or intent.template
        if titles and find_leak(reply.text, titles):
            reply.leaks += 1
            reply.text, reply.redactions = redact(reply.text, titles)
        if reply.reflection is not None:
            reply.reflection = reply.reflection.model_copy(update={"text": reply.text})
        reply.satisfaction = round(self.mind.state.satisfaction, 3)
        return reply

    def _phrase(self, intent: Intent, agent_text: str, reply: SimReply, *, task_suffix: str = "",
                json_schema: dict | None = None) -> str:
        """The model's wording of the intent ('' on failure, which the caller replaces by the template)."""
        need, persona, state = self.case.need, self.case.persona, self.mind.state
        messages = self.prompt.render(
            persona=describe(persona, self.case),
            style=STYLE[persona.verbosity],
            wants=[a.value for a in need.must_have],
            avoids=[a.value for a in need.must_not],
            wishes=need.soft if persona.knowledge != "novice" or not need.must_have else "",
            learned=state.learned[-4:],
            mood=state.mood,
            agent_text=agent_text[:MAX_AGENT_CHARS],
            task=intent.task + task_suffix,
        )
        started = time.perf_counter()
        try:
            out = self.model.chat(messages, max_tokens=MAX_TOKENS[persona.verbosity], temperature=0.0,
                                  timeout_s=self.timeout_s, json_schema=json_schema)
        except LLMError as exc:
            reply.fallbacks.append(f"simulator: {type(exc).__name__}")
            reply.latency_s += time.perf_counter() - started
            return ""
        reply.llm_calls += 1
        reply.tokens += out.usage.total_tokens
        reply.latency_s += out.latency_s or time.perf_counter() - started
        text = out.text.strip() if json_schema else clean_reply(out.text)
        if not text:
            reply.fallbacks.append("simulator: empty text")
        return text


def simulator_factory(model: ChatModel | None, *, prompt_id: str = DEFAULT_PROMPT, timeout_s: float = 60.0):
    """A `simulator_factory` for run_sim: (case, seed, catalog) -> an LLMUserSimulator over `model`."""
    load_prompt(prompt_id)  # an unknown id fails now, listing the known ones

    def make(case: SimCase, seed: int, catalog) -> LLMUserSimulator:
        return LLMUserSimulator(case, model=model, item_attributes=lambda item_id: item_attrs(catalog, item_id),
                                seed=seed, prompt_id=prompt_id, timeout_s=timeout_s)

    return make


def item_attrs(catalog, item_id: str) -> set[Attr]:
    """An item's attributes as Attr values (empty for an id outside the catalog)."""
    item = catalog.items.get(item_id)
    return set() if item is None else attributes_of(item)
