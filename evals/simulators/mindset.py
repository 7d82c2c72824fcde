"""What a simulated user decides to say, by code: its mindset, and its intent after each agent turn.

The need is checked by code wherever it is an id or an attribute (accept the target or an acceptable
item, reject items carrying a must-not attribute, answer a question yes iff the target has the
attribute). The LLM only phrases the decided intent (evals/simulators/llm.py).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agent.state import Attr
from evals.sim_cases import Persona, SimCase
from evals.simulators import Reflection, ShownItem

START = {"cooperative": 0.8, "neutral": 0.7, "uncooperative": 0.6}
DECAY = 0.03  # every agent turn costs a little interest
MISS = 0.12  # a list without anything wanted
VIOLATION = 0.10  # ... and with something the user said it does not want
REPEAT = 0.08  # a question already answered
REFLECT_BELOW = 0.5
LEAVE_BELOW = 0.15
DODGE_P = 0.4  # how often an uncooperative user dodges a question
_OPEN_QUESTION = re.compile(r"\b(what|which|tell me|anything|something else|describe|else)\b", re.IGNORECASE)


@dataclass
class Mindset:
    """What the user has learned and how satisfied it is."""

    satisfaction: float
    turns: int = 0
    learned: list[str] = field(default_factory=list)
    stated: list[Attr] = field(default_factory=list)  # attributes the user has asked for
    answered: dict[Attr, bool] = field(default_factory=dict)  # questions answered (yes / no)
    seen_ids: set[str] = field(default_factory=set)
    violations: list[Attr] = field(default_factory=list)  # must-not attributes seen in shown items
    last_reflection: int = -10

    @property
    def mood(self) -> str:
        if self.satisfaction >= 0.7:
            return "content"
        if self.satisfaction >= REFLECT_BELOW:
            return "losing patience"
        return "frustrated" if self.satisfaction >= 0.3 else "fed up"


@dataclass
class Intent:
    """What to say now: a task for the LLM, the template text that says it without one, and its effects."""

    task: str
    template: str
    accepted_id: str | None = None
    leave: bool = False
    reflection: Reflection | None = None


def noun(case: SimCase) -> str:
    """What the catalog holds, in the user's words."""
    return "music artist" if "lastfm" in case.catalog.lower() or case.source == "lastfm" else "movie"


def describe(persona: Persona, case: SimCase) -> str:
    """The persona as one line for the prompt."""
    knows = {"novice": "someone who knows little about {n}s and speaks in plain words",
             "casual": "a casual {n} fan", "expert": "a keen {n} fan who knows genres, eras and styles well"}
    mood = {"cooperative": "happy to answer questions", "neutral": "answers questions briefly",
            "uncooperative": "dislikes answering questions and wants results quickly"}
    patience = "impatient" if persona.patience <= 4 else "patient"
    return f"{knows[persona.knowledge].format(n=noun(case))}, {patience}, {mood[persona.cooperativeness]}"


STYLE = {"terse": "Write at most 8 words.", "normal": "Write one short sentence.",
         "chatty": "Write one or two friendly sentences."}


class Mind:
    """The decision half of a simulated user: reads the agent's text and cards, updates the mindset, picks an intent."""

    def __init__(self, case: SimCase, *, seed: int, item_attributes: Callable[[str], set[Attr]]) -> None:
        self.case = case
        self.need = case.need
        self.rng = random.Random(f"{seed}:{case.id}")
        self.attrs_of = item_attributes
        self.state = Mindset(satisfaction=START[case.persona.cooperativeness])
        self.wanted = list(dict.fromkeys([*self.need.must_have, *self.need.target_attributes]))
        vocabulary = dict.fromkeys([*self.wanted, *self.need.must_not])
        # Longest first (so "science fiction" wins over "fiction"), ties by type and value: never by set
        # order, which changes with each process's string hashing and made replays pick another attribute.
        self.vocabulary = sorted(vocabulary, key=lambda a: (-len(a.value), a.type, a.value))

    def opening(self) -> Intent:
        """Ask for one must-have (seeded); uncooperative users sometimes give nothing to go on."""
        pool = self.need.must_have or [a for a in self.need.target_attributes if a.type in ("genre", "tag")]
        item = noun(self.case)
        if not pool or (self.case.persona.cooperativeness == "uncooperative" and self.rng.random() < 0.5):
            return Intent(task=f"Greet briefly and ask for a good {item}, without saying what kind.",
                          template=f"Hi. Show me a good {item}.")
        want = self.rng.choice(sorted(pool, key=str))
        self.state.stated.append(want)
        extra = f" {self.need.soft}" if self.need.soft and self.case.persona.verbosity == "chatty" else ""
        return Intent(task=f"Greet briefly and say you are looking for a {item} that is {want.value}.{extra}",
                      template=f"Hi, I'm looking for a {want.value} {item}.{extra}")

    def react(self, agent_text: str, shown: Sequence[ShownItem], *, soft_choice: str | None = None) -> Intent:
        """Review the turn, then maybe leave or write a reflective instruction.

        `soft_choice` is a shown id the LLM judged to fit the soft wishes (needs without ids only).
        """
        self.state.turns += 1
        self.state.satisfaction -= DECAY
        intent = self._review(shown, soft_choice) if shown else self._answer(agent_text)
        if intent.accepted_id is None:
            intent = self._maybe_leave(intent)
        if intent.accepted_id is None and not intent.leave:
            self._maybe_reflect(intent)
        self.state.satisfaction = min(max(self.state.satisfaction, 0.0), 1.0)
        return intent

    def acceptable(self, item_id: str) -> bool:
        """A shown item is accepted if it is a target, or an acceptable id without a must-not attribute."""
        if item_id in self.need.target_ids:
            return True
        return item_id in self.need.acceptable_ids and not (self.attrs_of(item_id) & set(self.need.must_not))

    def fits(self, item_id: str) -> bool:
        """Every must-have attribute and no must-not one (the code half of judging an item)."""
        have = self.attrs_of(item_id)
        return set(self.need.must_have) <= have and not (have & set(self.need.must_not))

    @property
    def by_ids(self) -> bool:
        """Whether the need names ids (accepted by code) or only attributes and wishes (the LLM helps)."""
        return bool(self.need.target_ids or self.need.acceptable_ids)

    def _review(self, shown: Sequence[ShownItem], soft_choice: str | None) -> Intent:
        self.state.seen_ids.update(s.item_id for s in shown)
        ranked = sorted(shown, key=lambda s: s.item_id not in self.need.target_ids)
        for item in ranked:
            if self.acceptable(item.item_id) or (item.item_id == soft_choice and self.fits(item.item_id)):
                n = [s.item_id for s in shown].index(item.item_id) + 1
                self.state.satisfaction = 1.0
                return Intent(task=f"You like option {n}. Say you will take number {n} and thank them.",
                              template=f"Yes, number {n} is exactly what I wanted, thanks!", accepted_id=item.item_id)
        self.state.satisfaction -= MISS
        bad = [a for s in shown for a in self.need.must_not if a in self.attrs_of(s.item_id)]
        self.state.learned.append(f"they showed {len(shown)} {noun(self.case)}s, none right")
        if bad:
            self.state.satisfaction -= VIOLATION
            self.state.violations.append(bad[0])
            self.state.learned.append(f"some were {bad[0].value}, which you do not want")
            return Intent(task=f"Say none of these are right, you do not want {bad[0].value}, and ask for something else.",
                          template=f"None of these, and no {bad[0].value} please. Something else?")
        return Intent(task="Say none of these are right and ask for something else.",
                      template="None of these, something else please.")

    def _answer(self, agent_text: str) -> Intent:
        lowered = agent_text.lower()
        mentioned = [a for a in self.vocabulary if re.search(rf"(?<!\w){re.escape(a.value.lower())}(?!\w)", lowered)]
        question = "?" in agent_text
        if question and self.case.persona.cooperativeness == "uncooperative" and self.rng.random() < DODGE_P:
            self.state.satisfaction -= DECAY
            return Intent(task="Do not answer the question; say you don't know and ask them to just show you something.",
                          template="I don't know, just show me something.")
        if mentioned:
            return self._yes_no(mentioned[0])
        if not question or _OPEN_QUESTION.search(agent_text):
            return self._restate()
        self.state.learned.append("they asked about something you do not need")
        return Intent(task="Say no, that is not what you are after.", template="No, not really.")

    def _yes_no(self, attr: Attr) -> Intent:
        wanted = attr in self.wanted and attr not in self.need.must_not
        if attr in self.state.answered:
            self.state.satisfaction -= REPEAT
            self.state.learned.append(f"they asked about {attr.value} again")
        elif attr in self.need.must_have:
            self.state.satisfaction += DECAY
        self.state.answered[attr] = wanted
        if wanted:
            self.state.stated.append(attr)
            return Intent(task=f"Say yes, you want {attr.value}.", template=f"Yes, {attr.value} please.")
        self.state.learned.append(f"you said no to {attr.value}")
        return Intent(task=f"Say no, you do not want {attr.value}.", template=f"No, no {attr.value} please.")

    def _unstated(self) -> list[Attr]:
        return [a for a in self.need.must_have if a not in self.state.stated]

    def _restate(self) -> Intent:
        todo = self._unstated()
        if todo:
            attr = todo[0]
            self.state.stated.append(attr)
            return Intent(task=f"Say you would like something {attr.value}.", template=f"I'd like something {attr.value}.")
        if self.need.soft:
            return Intent(task=f"Say in your own words what you want: {self.need.soft}", template=self.need.soft)
        return Intent(task="Ask them to show you a few options.", template="Just show me a few options please.")

    def _maybe_leave(self, intent: Intent) -> Intent:
        if self.state.turns < self.case.persona.patience and self.state.satisfaction > LEAVE_BELOW:
            return intent
        return Intent(task="You have had enough: say goodbye and that you will look elsewhere.",
                      template="Never mind, I'll look elsewhere. Bye.", leave=True)

    def _maybe_reflect(self, intent: Intent) -> None:
        """When interest drops, add a reflective instruction (what to stop, what to focus on)."""
        state = self.state
        if state.satisfaction >= REFLECT_BELOW or state.turns - state.last_reflection < 2:
            return
        state.last_reflection = state.turns
        todo = self._unstated()
        if state.violations:
            attr, kind = state.violations[-1], "avoid"
            task, text = f"Also tell them firmly: no more {attr.value}.", f"No more {attr.value} please, I don't want {attr.value}."
        elif todo:
            attr, kind = todo[0], "want"
            state.stated.append(attr)
            task, text = f"Also tell them firmly that what you really want is {attr.value}.", f"What I really want is {attr.value}."
        else:
            attr, kind = None, "different"
            task, text = "Also tell them firmly to show you something different.", "Please show me something different."
        intent.task += " " + task
        intent.template += " " + text
        intent.reflection = Reflection(turn=state.turns, kind=kind, attribute=attr)
