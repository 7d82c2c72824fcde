"""ConversationService: the one entry point that the UI, the API, the CLI and the simulators call."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from agent.llm import ChatModel, TokenCallback
from agent.policy import CPRPolicy, PolicyConfig, Scorer, template_reason, template_reasons
from agent.prompts import load_prompt
from agent.planner import LLMPlanner, PlannerConfig
from agent.reply import phrase
from agent.reply_check import check_lead
from agent.rerank import RerankConfig, rerank
from conversation.nlu import Lexicon, Understanding, understand
from conversation.linker import mask_mentions
from agent.state import Action, ChatTurn, ConvState, LLMCallTrace, Recommendation, Trace, TurnResult
from conversation.store import InMemorySessionStore, SessionStore, UnknownSession
from conversation.wishes import wish_query
from retrieval.catalog import Catalog

MAX_MESSAGE_CHARS = 2000
MAX_STORED_CANDIDATES = 500


CHECKED_TYPES = ("genre", "decade", "mood")  # values a lead may cite only when the listed items have them


@dataclass(frozen=True)
class ServiceConfig:
    policy: PolicyConfig = PolicyConfig()
    reply_prompt: str = "reply.v3"
    llm_timeout_s: float = 30.0
    llm_max_tokens: int = 40  # one short sentence; decode is ~10 tokens/s on 2 cores
    rerank_prompt: str | None = None  # e.g. "rerank.v1": the LLM re-ranks and explains recommendations
    mode: str = "graph"  # "graph": CPR decides alone; "llm": the LLM planner chooses among CPR's legal actions
    planner_prompt: str = "planner.v3"  # v1 and v2 had the embedded model recommend at once (reports/ab-*.md)
    phrase: bool = True  # let the LLM phrase the lead sentence (templates otherwise)


class ConversationService:
    """Turns user messages into TurnResults over one catalog, keeping each session's ConvState in a store."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        model: ChatModel | None,
        config: ServiceConfig | None = None,
        store: SessionStore | None = None,
        scorer: Scorer | None = None,
        tools=None,
        linker=None,
        reader=None,
        graph=None,
    ) -> None:
        self.catalog = catalog
        self.model = model
        self.config = config or ServiceConfig()
        self.store = store or InMemorySessionStore()
        self.policy = CPRPolicy(catalog, self.config.policy, scorer=scorer, graph=graph)
        self.lexicon = getattr(reader, "lexicon", None) or Lexicon.from_catalog(catalog)  # built once at start
        self.linker = linker  # titles and people in free text (conversation.linker.EntityLinker)
        self.reader = reader  # matcher + translation + LLM reader (conversation.reader.MessageReader)
        self.tools = tools
        self._checked_values = sorted({v for item in catalog.items.values() for t in CHECKED_TYPES
                                       for v in item.attributes.get(t, [])})
        self.reply_prompt = load_prompt(self.config.reply_prompt)
        self.rerank_prompt = load_prompt(self.config.rerank_prompt) if self.config.rerank_prompt else None
        if self.config.mode not in ("graph", "llm"):
            raise ValueError(f"mode must be 'graph' or 'llm', not {self.config.mode!r}")
        if self.config.mode == "llm" and model is None:
            raise ValueError("mode 'llm' (CONCIERGE_MODE=llm) needs a chat model, and none was given "
                             "(CONCIERGE_LLM_BACKEND, or --backend none): set CONCIERGE_MODE=graph or configure a model")
        self.planner = None
        if self.config.mode == "llm" and model is not None:
            self.planner = LLMPlanner(model, load_prompt(self.config.planner_prompt), catalog, tools=tools,
                                      config=PlannerConfig(timeout_s=self.config.llm_timeout_s),
                                      list_size=self.config.policy.list_size)

    def warm_up(self) -> float:
        """Load what the first turn would otherwise wait for (model weights, the reply prompt's cached
        prefix, the query embedder); returns the seconds it took."""
        started = time.perf_counter()
        search = getattr(self.policy.scorer, "search", None)
        if search is not None:
            search("a film to warm up the search", 1)
        if self.model is not None and self.config.phrase:
            phrase(Action(kind="recommend"), ConvState(session_id="-"), "hello", model=self.model,
                   prompt=self.reply_prompt, timeout_s=self.config.llm_timeout_s, max_tokens=1)
        return time.perf_counter() - started

    def start(self, *, user_id: str | None = None) -> str:
        """Open a conversation; returns an unguessable session id."""
        session_id = secrets.token_urlsafe(18)
        self.store.put(ConvState(session_id=session_id, user_id=user_id))
        return session_id

    def end(self, session_id: str) -> bool:
        """Forget a conversation; False if there was none."""
        return self.store.delete(session_id)

    def state(self, session_id: str) -> ConvState:
        state = self.store.get(session_id)
        if state is None:
            raise UnknownSession(session_id)
        return state

    def respond(self, session_id: str, text: str, *, on_token: TokenCallback | None = None) -> TurnResult:
        """One turn from free text: understand, update state, decide, phrase, return the structured result."""
        text = (text or "")[:MAX_MESSAGE_CHARS]
        return self._turn(session_id, text, lambda state: self.read(text, state), on_token)

    def respond_structured(self, session_id: str, feedback: Understanding, *, text: str = "",
                           on_token: TokenCallback | None = None) -> TurnResult:
        """One turn from structured feedback (quick replies, simulators): the same path without NLU."""
        return self._turn(session_id, text, lambda _state: TurnInput(feedback), on_token)

    def read(self, text: str, state: ConvState) -> TurnInput:
        """The product's reader: link titles and people, then read the rest for attributes and wishes."""
        mentions = self.linker.link(text) if self.linker is not None and text.strip() else []
        rest = mask_mentions(text, mentions) if mentions else text
        if self.reader is not None and not (mentions and wish_query(rest) is None):
            reading = self.reader.read(rest, state)
            out = TurnInput(reading.understanding, mentions, list(reading.llm_calls), list(reading.fallbacks))
        else:
            out = TurnInput(understand(rest, state, self.lexicon), mentions)
        return out

    def observe(self, session_id: str, text: str, *, role: str = "user") -> None:
        """Read one utterance of an existing dialog into the session without answering it (ReDial
        contexts): the person's words update the state as in a turn; the other side's named items count
        as shown (never recommended back) and as mentioned (the context the ranker reads, see
        agent/session_scorer.py)."""
        with self.store.lock(session_id):
            state = self.state(session_id)
            text = (text or "")[:MAX_MESSAGE_CHARS]
            state.history.append(ChatTurn(role="user" if role == "user" else "assistant", text=text))
            if role == "user":
                reading = self.read(text, state)
                _apply(state, reading.understanding)
                _apply_mentions(state, reading.mentions)
            elif self.linker is not None:
                named = [m.item_id for m in self.linker.link(text) if m.kind == "item" and m.item_id]
                state.shown_items.extend(i for i in named if i not in state.shown_items)
                state.mentioned_items.extend(i for i in named if i not in state.mentioned_items)
            self.store.put(state)

    def rank(self, session_id: str, *, k: int) -> list[str]:
        """The service's own ranking for the session as it stands: the first k candidates, best first
        (never an item the person named, rejected or was shown). With the LLM re-ranker on, its order of
        the top candidates (fused with the ranker's, as in a turn) leads and the ranker's order follows."""
        state = self.state(session_id)
        ranked = self.policy.ranked_candidates(state, k)
        if self.rerank_prompt is None or self.model is None or not ranked:
            return ranked
        pool = self.policy.rank(ranked[: RerankConfig.top_n], state)
        out = rerank(pool, state, self.catalog, model=self.model, prompt=self.rerank_prompt,
                     config=RerankConfig(keep=self.config.policy.list_size, timeout_s=self.config.llm_timeout_s))
        return list(dict.fromkeys([*out.ids, *ranked]))[:k]

    def _turn(self, session_id: str, text: str, read, on_token: TokenCallback | None) -> TurnResult:
        with self.store.lock(session_id):  # per process, or across workers for a shared store
            started = time.perf_counter()
            state = self.state(session_id)
            state.turn += 1
            state.history.append(ChatTurn(role="user", text=text))
            reading = read(state)
            _apply(state, reading.understanding)
            _apply_mentions(state, reading.mentions)
            decision = self.policy.decide(state)
            trace = Trace(understood=reading.summary(self.catalog), candidates=len(decision.candidates))
            scorer_calls = getattr(self.policy.scorer, "calls", None)
            if scorer_calls is not None:
                trace.tool_calls.extend(scorer_calls(state))
            trace.llm_calls.extend(reading.llm_calls)
            if reading.fallbacks:
                trace.fallbacks.extend(reading.fallbacks)
                trace.degraded = True
            if self.planner is not None:
                plan = self.planner.plan(state, decision)
                decision = plan.decision
                trace.llm_calls.extend(plan.llm_calls)
                trace.tool_calls.extend(plan.tool_calls)
                trace.invalid_ids_proposed += plan.invalid_ids_proposed
                if plan.fallback is not None:
                    trace.fallbacks.append(plan.fallback)
                    trace.degraded = True
            action = self._action(decision, state, trace)
            streamed: list[str] = []
            sink = None if on_token is None else (lambda chunk: (streamed.append(chunk), on_token(chunk)))
            lead, llm_trace, fallback = phrase(
                action,
                state,
                text,
                model=self.model if self.config.phrase else None,
                prompt=self.reply_prompt,
                timeout_s=self.config.llm_timeout_s,
                max_tokens=self.config.llm_max_tokens,
                on_token=sink,
                check=self._lead_check(action, state),
            )
            if on_token is not None and (fallback is not None or not streamed):
                on_token(("\n" if streamed else "") + lead)
            if llm_trace is not None:
                trace.llm_calls.append(llm_trace)
            if fallback is not None:
                trace.fallbacks.append(fallback)
                trace.degraded = True
            body = _render_items(action)
            if body and on_token is not None:
                on_token("\n" + body)
            reply_text = f"{lead}\n{body}" if body else lead
            _record(state, action, decision.candidates, reply_text)
            self.store.put(state)
            trace.latency_s = time.perf_counter() - started
            return TurnResult(session_id=session_id, turn=state.turn, action=action, text=reply_text, trace=trace,
                              lead=lead)

    def _reason_list(self, item_id: str, reason: str, state: ConvState) -> list[str]:
        """The reasons one by one: the template's parts, or the LLM's one reason as written."""
        parts = template_reasons(self.catalog, item_id, state)
        return parts if reason == "; ".join(parts) else [reason]

    def _lead_check(self, action: Action, state: ConvState):
        """What a recommendation lead may say, from the listed items' real attributes (agent/reply_check.py)."""
        if action.kind != "recommend" or not action.items:
            return None
        items = {r.item_id: self.catalog.items[r.item_id] for r in action.items if r.item_id in self.catalog.items}
        values = {i: [v for vs in item.attributes.values() for v in vs] for i, item in items.items()}
        years = {i: item.attributes["year"][0] for i, item in items.items() if item.attributes.get("year")}
        linker = self.linker

        def titles_in(text: str) -> list[str]:
            return [m.item_id for m in linker.link(text) if m.kind == "item" and m.item_id] if linker else []

        return lambda text: check_lead(text, action, state, item_values=values, vocabulary=self._checked_values,
                                       years=years, titles_in=titles_in)

    def _action(self, decision, state: ConvState, trace: Trace) -> Action:
        if decision.kind == "ask":
            return Action(kind="ask", attribute=decision.attribute, options=["Yes", "No", "Doesn't matter"])
        ranked = decision.ranked
        reasons = {item_id: template_reason(self.catalog, item_id, state) for item_id, _score in ranked}
        if self.rerank_prompt is not None and self.model is not None:
            pool = self.policy.rank(decision.candidates[: RerankConfig.top_n], state)
            out = rerank(pool, state, self.catalog, model=self.model, prompt=self.rerank_prompt,
                         config=RerankConfig(keep=self.config.policy.list_size, timeout_s=self.config.llm_timeout_s),
                         template_reason=lambda item_id: template_reason(self.catalog, item_id, state))
            scores = dict(pool)
            ranked = [(item_id, scores[item_id]) for item_id in out.ids]
            reasons = out.reasons
            trace.invalid_ids_proposed += out.invalid_ids_proposed
            if out.trace is not None:
                trace.llm_calls.append(out.trace)
            if out.fallback is not None:
                trace.fallbacks.append(out.fallback)
                trace.degraded = True
        items = [
            Recommendation(item_id=item_id, title=self.catalog.items[item_id].title, reason=reasons[item_id],
                           reasons=self._reason_list(item_id, reasons[item_id], state), score=round(score, 4))
            for item_id, score in ranked
        ]
        return Action(kind="recommend", items=items)


def _apply(state: ConvState, understood: Understanding) -> None:
    for attr in understood.accepted:
        if attr in state.rejected:
            state.rejected.remove(attr)
        if attr not in state.accepted:
            state.accepted.append(attr)
    for attr in understood.rejected:
        if attr in state.accepted:
            state.accepted.remove(attr)
        if attr not in state.rejected:
            state.rejected.append(attr)
    if understood.reject_shown and state.last_action == "recommend":
        state.rejected_items.extend(i for i in state.last_shown if i not in state.rejected_items)
    state.wishes.extend(w for w in (wish_query(text) for text in understood.wishes) if w)


def _apply_mentions(state: ConvState, mentions) -> None:
    """Named items become liked, disliked or seen (each in one list only); named people are attributes."""
    for mention in mentions:
        if mention.kind == "item" and mention.item_id:
            for bucket in (state.liked_items, state.disliked_items, state.seen_items):
                if mention.item_id in bucket:
                    bucket.remove(mention.item_id)
            {"liked": state.liked_items, "disliked": state.disliked_items,
             "seen": state.seen_items}[mention.sentiment].append(mention.item_id)
        elif mention.kind == "attribute" and mention.attr is not None:
            _apply(state, Understanding(accepted=[mention.attr]) if mention.sentiment != "disliked"
                   else Understanding(rejected=[mention.attr]))


@dataclass
class TurnInput:
    """What the reader took from one message: attributes and wishes, linked mentions, its LLM calls."""

    understanding: Understanding
    mentions: list = field(default_factory=list)
    llm_calls: list[LLMCallTrace] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)

    def summary(self, catalog: Catalog) -> dict:
        out = self.understanding.summary()
        for sentiment in ("liked", "disliked", "seen"):
            named = [catalog.items[m.item_id].title for m in self.mentions
                     if m.kind == "item" and m.sentiment == sentiment and m.item_id in catalog.items]
            if named:
                out[f"{sentiment}_items"] = named
        people = [str(m.attr) for m in self.mentions if m.kind == "attribute" and m.attr is not None]
        if people:
            out["named_attributes"] = people
        return out


def _record(state: ConvState, action: Action, candidates: list[str], text: str) -> None:
    state.candidate_ids = candidates[:MAX_STORED_CANDIDATES]
    state.last_action = action.kind
    state.last_asked = action.attribute if action.kind == "ask" else None
    if action.kind == "ask" and action.attribute is not None:
        state.asked.append(action.attribute)
    if action.kind == "recommend":
        state.last_shown = [r.item_id for r in action.items]
        state.shown_items.extend(i for i in state.last_shown if i not in state.shown_items)
    state.history.append(ChatTurn(role="assistant", text=text))


def _render_items(action: Action) -> str:
    return "\n".join(f"{n}. {r.title} \u2014 {r.reason}" for n, r in enumerate(action.items, 1))
