"""The LLM planner (ToolRec-style): the LLM chooses among CPR's legal actions, optionally after searching.

Each turn it sees a compact state (likes, dislikes, candidate count, top candidates by title) and the
legal actions: ask one of the top-K CPR attributes, call the hybrid search tool with a short query, or
recommend candidates. Its output is constrained by a JSON schema whose attributes and items are enums of
the legal ones. At most `max_tool_calls` searches per turn; a search only re-orders the CPR candidates
(never adds items off the path). Invalid output, a timeout or an error gives CPR's own action, counted as
a fallback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel, StrictInt, StrictStr

from agent.llm import ChatModel
from agent.policy import Decision
from agent.prompts import PromptTemplate
from agent.step import llm_step
from agent.state import ConvState, LLMCallTrace, ToolCallTrace
from retrieval.catalog import Catalog


@dataclass(frozen=True)
class PlannerConfig:
    max_tool_calls: int = 3
    candidates_shown: int = 8
    max_picks: int = 3  # items the LLM may put first in a recommendation; the ranker's order fills the rest
    max_tokens: int = 40
    timeout_s: float = 20.0


@dataclass
class Plan:
    decision: Decision
    llm_calls: list[LLMCallTrace] = field(default_factory=list)
    tool_calls: list[ToolCallTrace] = field(default_factory=list)
    fallback: str | None = None
    invalid_ids_proposed: int = 0  # ids the LLM named that the candidate gate removed


class PlannerChoice(BaseModel):
    """The planner's answer; which fields count depends on the action (one schema branch each)."""

    action: StrictStr
    attribute: StrictStr | StrictInt | None = None  # "A2": the second legal attribute
    items: list[StrictInt | StrictStr] | None = None  # 1-based numbers of the candidates shown
    query: StrictStr | None = None


ILLEGAL_ACTION = "output is not one of the legal actions"


def _legal(actions: list[str], n_attributes: int) -> Callable[[PlannerChoice], PlannerChoice]:
    """The check of a choice: a legal action, and for an ask one of the legal attributes."""
    def check(choice: PlannerChoice) -> PlannerChoice:
        if choice.action not in actions:
            raise ValueError(ILLEGAL_ACTION)
        if choice.action == "ask" and _index(choice.attribute, "A", n_attributes) is None:
            raise ValueError("attribute not among the legal ones")
        return choice
    return check


def planner_schema(actions: list[str], n_attributes: int, n_candidates: int, max_picks: int) -> dict:
    """One branch per legal action, each with exactly the fields it needs, so the output is short and
    every attribute and item is an enum of the legal ones (a small model cannot pad an ask with items)."""
    branches = []
    if "ask" in actions and n_attributes:
        branches.append(_branch("ask", attribute={"type": "string",
                                                  "enum": [f"A{i}" for i in range(1, n_attributes + 1)]}))
    if "recommend" in actions and n_candidates:
        branches.append(_branch("recommend", items={"type": "array", "minItems": 1,
                                                    "maxItems": max(1, min(max_picks, n_candidates)),
                                                    "items": {"type": "integer",
                                                              "enum": list(range(1, n_candidates + 1))}}))
    if "search" in actions:
        branches.append(_branch("search", query={"type": "string", "minLength": 1, "maxLength": 60}))
    return branches[0] if len(branches) == 1 else {"anyOf": branches}


def planner_branches(schema: dict) -> dict[str, dict]:
    """{action: its branch's properties} of a planner schema (for fakes and inspection)."""
    return {b["properties"]["action"]["const"]: b["properties"] for b in schema.get("anyOf", [schema])}


def _branch(action: str, **fields: dict) -> dict:
    return {"type": "object", "properties": {"action": {"const": action}, **fields},
            "required": ["action", *fields], "additionalProperties": False}


class LLMPlanner:
    """Turns CPR's decision into the LLM's choice among the same legal actions."""

    def __init__(self, model: ChatModel, prompt: PromptTemplate, catalog: Catalog, *, tools=None,
                 config: PlannerConfig = PlannerConfig(), list_size: int = 5) -> None:
        self.model = model
        self.prompt = prompt
        self.catalog = catalog
        self.tools = tools
        self.config = config
        self.list_size = list_size

    def plan(self, state: ConvState, decision: Decision) -> Plan:
        plan = Plan(decision=decision)
        candidates = list(decision.candidates)
        searches = 0
        for _step in range(self.config.max_tool_calls + 1):
            shown = candidates[: self.config.candidates_shown]
            legal = decision.attributes
            can_search = self.tools is not None and searches < self.config.max_tool_calls and len(candidates) > 1
            actions = [a for a, ok in (("ask", bool(legal)), ("recommend", bool(candidates)), ("search", can_search)) if ok]
            if not candidates:
                return plan
            if decision.kind == "recommend" and not can_search and len(candidates) <= self.list_size:
                return plan  # every candidate fits in one list: nothing for the LLM to decide
            provided = dict(
                accepted=[a.value for a in state.accepted], rejected=[a.value for a in state.rejected],
                wishes=state.wishes[-2:], count=len(candidates), attributes=[str(a.value) for a, _h in legal],
                candidates=[self.catalog.items[i].title for i in shown], can_search=can_search,
                list_size=min(self.config.max_picks, len(shown)), advice=_advice(decision, legal),
            )
            variables = {k: v for k, v in provided.items() if k in self.prompt.variables}
            step = llm_step(self.model, self.prompt, purpose="plan", variables=variables, output=PlannerChoice,
                            json_schema=planner_schema(actions, len(legal), len(shown), self.config.max_picks),
                            max_tokens=self.config.max_tokens, timeout_s=self.config.timeout_s,
                            validate=_legal(actions, len(legal)), invalid=ILLEGAL_ACTION)
            plan.llm_calls.append(step.trace)
            if step.fallback is not None:
                plan.fallback = str(step.fallback)
                return plan
            choice = step.value
            action = choice.action
            if action == "search":
                searches += 1
                candidates = self._search(state, choice.query or "", candidates, plan)
                continue
            if action == "ask":
                index = _index(choice.attribute, "A", len(legal))
                plan.decision = Decision("ask", candidates, decision.ranked, attribute=legal[index][0],
                                         attributes=legal, top_mass=decision.top_mass)
                return plan
            picked, invalid = [], 0
            for n in choice.items or []:
                index = _index(n, "", len(shown))
                if index is None or shown[index] in picked:
                    invalid += 1
                else:
                    picked.append(shown[index])
            plan.invalid_ids_proposed += invalid
            picked = picked[: self.config.max_picks]
            scores = dict(decision.ranked)
            rest = [i for i in candidates if i not in picked]
            ids = (picked + rest)[: self.list_size]
            plan.decision = Decision("recommend", candidates, [(i, scores.get(i, 0.0)) for i in ids],
                                     top_mass=decision.top_mass)
            return plan
        plan.fallback = "plan: no decision after the allowed searches"
        return plan

    def _search(self, state: ConvState, query: str, candidates: list[str], plan: Plan) -> list[str]:
        """Hybrid search within the path's constraints; hits that are candidates move to the front."""
        arguments = {"query": query or " ".join(a.value for a in state.accepted) or "popular", "k": 50,
                     "must_have": [a.value for a in state.accepted], "must_not": [a.value for a in state.rejected],
                     "exclude_ids": list(dict.fromkeys(state.rejected_items + state.shown_items))}
        started = time.perf_counter()
        result = self.tools.call("search_hybrid", arguments)
        plan.tool_calls.append(ToolCallTrace(name="search_hybrid", arguments={"query": arguments["query"]},
                                             observation=result.observation,
                                             latency_s=time.perf_counter() - started))
        allowed = set(candidates)
        hits = [i for i in result.ids if i in allowed]
        return hits + [i for i in candidates if i not in set(hits)]


# What the planner can show a prompt; a prompt declares the subset it uses.
PLANNER_VARIABLES = frozenset({"accepted", "rejected", "wishes", "count", "attributes", "candidates", "can_search",
                               "list_size", "advice"})


def _advice(decision: Decision, legal) -> str:
    """CPR's own choice in the planner's terms: "ask A2" or "recommend"."""
    if decision.kind == "ask" and decision.attribute is not None:
        for n, (attr, _h) in enumerate(legal, 1):
            if attr == decision.attribute:
                return f"ask A{n}"
    return "recommend"


def _index(value, prefix: str, size: int) -> int | None:
    """1-based "A3" / 3 / "3" -> 0-based index within size, else None."""
    text = str(value).strip()
    if prefix and text.upper().startswith(prefix):
        text = text[len(prefix):]
    if not text.isdigit():
        return None
    n = int(text)
    return n - 1 if 1 <= n <= size else None
