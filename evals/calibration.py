"""Simulator calibration against people: ReDial's human seekers beside a simulated-user run.

The same four statistics are computed from both sides:

- **utterance length**: words per seeker turn (whitespace tokens; a ReDial movie mention `@12345` is one word);
- **preference vs reaction**: each seeker turn is flagged by a rule-based classifier (`classify_turn`): it
  *states a preference* if it matches a preference cue (I like / looking for / in the mood for / a genre word
  / "something ..." / "like @123" ...); it *reacts to items* if the other side's previous turn put items in
  front of the seeker (a ReDial recommender turn with a `@id` mention; a simulated-user transcript turn that
  showed ids) and the turn mentions a movie or matches a reaction cue (seen it / sounds good / not for me /
  thanks ...). A turn may do both or neither (greetings, chit-chat, answers to questions);
- **acceptance**: ReDial's seeker questionnaire (`initiatorQuestions`): of the movies the recommender suggested
  (`suggested` = 1) with an answer on `liked` (0/1; 2 = did not say), the share liked; also among the
  suggestions the seeker had not seen. The simulator's analogue: accepted items over distinct items shown,
  and the share of sessions that accepted one (a ReDial dialog "accepts" when any suggestion was liked);
- **dialog length**: seeker turns per dialog (ReDial merges a sender's consecutive messages into one turn
  already; a simulated session counts its opening and every reply).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MENTION = re.compile(r"@\d+")
PREFERENCE = re.compile(
    r"\b(i\s*(?:'m|am)\s+(?:looking|searching|seeking|in the mood|into|a (?:big )?fan)|looking for|in the mood|"
    r"(?:movies?|films?|something|one) (?:that|with|about|where)|kind of|type of|"
    r"i\s+(?:really\s+)?(?:like|love|enjoy|prefer|want|need|adore)|i'd like|i would like|favou?rite|"
    r"fan of|something|anything|any (?:good|suggestions?|recommendations?|ideas?)|recommend|suggest|"
    r"(?:comed(?:y|ies)|horror|action|drama|romance|romantic|thriller|sci-?fi|science fiction|animated|animation|"
    r"documentar(?:y|ies)|musicals?|westerns?|fantasy|mystery|crime|war|family|kids?|superhero|scary|funny|"
    r"adventure|classic|indie|rock|pop|jazz|metal|folk|hip hop|rap|electronic)s?|movies? like|films? like|"
    r"similar to|no (?:horror|comedy|romance|gore)|not (?:too|really) into|don'?t like|hate)\b",
    re.IGNORECASE)
REACTION = re.compile(
    r"\b(seen|saw|watched|watch(?:ed)? it|heard (?:of|about)|sounds? (?:good|great|interesting|fun)|looks? (?:good|great)|"
    r"(?:will|i'll|gonna|going to) (?:check|watch|try|look)|check (?:it|that|them|those) out|add(?:ed)? (?:it|that)|"
    r"good one|great (?:one|choice|suggestion|pick)|love[sd]? (?:it|that|those)|like[sd]? (?:it|that|those)|"
    r"enjoyed|(?:great|good|fun|awesome|cute) (?:film|movie)|(?:have|need) to (?:try|watch|see|check)|"
    r"give (?:it|that|them) a try|look (?:it|that|them) up|not (?:for me|a fan|interested|my (?:thing|style))|"
    r"(?:didn'?t|did not) like|"
    r"thanks?|thank you|perfect|awesome|not bad|never heard|haven'?t seen|have seen|that one|those|"
    r"(?:is|was) (?:good|great|ok|okay|boring|funny|scary|amazing))\b",
    re.IGNORECASE)


def classify_turn(text: str, *, after_items: bool) -> tuple[bool, bool]:
    """(states a preference, reacts to items) for one seeker turn; reactions need items just shown."""
    preference = bool(PREFERENCE.search(text))
    reaction = after_items and bool(MENTION.search(text) or REACTION.search(text))
    return preference, reaction


def words(text: str) -> int:
    return len(text.split())


@dataclass
class Dialog:
    """One conversation reduced to what calibration needs."""

    seeker_turns: list[str]
    after_items: list[bool]  # per seeker turn: did the other side's previous turn show items?
    suggested: int = 0  # items put in front of the seeker (ReDial: answered suggestions; sim: distinct ids shown)
    accepted: int = 0
    suggested_unseen: int = 0  # ReDial only: answered suggestions the seeker had not seen
    accepted_unseen: int = 0
    source: str = ""
    group: str = ""  # persona name for simulated users
    extra: dict = field(default_factory=dict)


def redial_dialog(row: dict) -> Dialog:
    """A ReDial dialog from the seeker's side (the initiator is the seeker)."""
    seeker = row["initiatorWorkerId"]
    turns, after, items_pending = [], [], False
    for message in row["messages"]:
        text = message.get("text") or ""
        if message["senderWorkerId"] == seeker:
            turns.append(text)
            after.append(items_pending)
            items_pending = False
        else:
            items_pending = items_pending or bool(MENTION.search(text))
    dialog = Dialog(turns, after, source="redial")
    answers = row.get("initiatorQuestions") or {}
    for answer in (answers.values() if isinstance(answers, dict) else []):
        if answer.get("suggested") != 1 or answer.get("liked") not in (0, 1):
            continue
        dialog.suggested += 1
        dialog.accepted += answer["liked"] == 1
        if answer.get("seen") == 0:
            dialog.suggested_unseen += 1
            dialog.accepted_unseen += answer["liked"] == 1
    dialog.extra["answered"] = isinstance(answers, dict) and bool(answers)
    return dialog


def sim_dialog(record: dict) -> Dialog:
    """A simulated session (a run_sim record with its transcript) from the simulated user's side."""
    turns, after, shown_before, shown = [], [], False, []
    for entry in record.get("transcript") or []:
        if entry["role"] == "user":
            turns.append(str(entry.get("text") or ""))
            after.append(shown_before)
        else:
            ids = entry.get("shown") or []
            shown_before = bool(ids)
            shown.extend(ids)
    accepted = 1 if record.get("accepted_id") else 0
    return Dialog(turns, after, suggested=len(set(shown)), accepted=accepted, source="simulator",
                  group=str(record.get("persona", "")))


def load_redial(path: Path) -> list[Dialog]:
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(redial_dialog(json.loads(line)))
            except (json.JSONDecodeError, KeyError) as exc:
                raise ValueError(f"{path}:{number}: not a ReDial dialog ({exc})") from None
    return rows


def load_sim_run(path: Path) -> list[Dialog]:
    """Sessions of a simulated-user run (JSONL of run_sim records); a torn last line is skipped."""
    dialogs = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "transcript" not in record:
            raise ValueError(f"{path}:{number}: a record without a transcript (not a simulated-user run)")
        dialogs.append(sim_dialog(record))
    return dialogs


def _spread(values: Iterable[float]) -> dict:
    data = np.asarray(list(values), dtype=float)
    if data.size == 0:
        return {"n": 0, "mean": None, "median": None, "p10": None, "p90": None}
    return {"n": int(data.size), "mean": float(data.mean()), "median": float(np.median(data)),
            "p10": float(np.percentile(data, 10)), "p90": float(np.percentile(data, 90))}


def _share(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def statistics(dialogs: Sequence[Dialog]) -> dict:
    """Utterance length, preference/reaction shares, acceptance and dialog length over some dialogs."""
    turns = [(text, after) for d in dialogs for text, after in zip(d.seeker_turns, d.after_items)]
    flags = [classify_turn(text, after_items=after) for text, after in turns]
    n = len(flags)
    after_items = sum(after for _text, after in turns)
    suggested = sum(d.suggested for d in dialogs)
    return {
        "dialogs": len(dialogs),
        "seeker_turns": n,
        "words_per_turn": _spread(words(text) for text, _after in turns),
        "turns_per_dialog": _spread(len(d.seeker_turns) for d in dialogs),
        "preference_share": _share(sum(p for p, _r in flags), n),
        "reaction_share": _share(sum(r for _p, r in flags), n),
        "both_share": _share(sum(p and r for p, r in flags), n),
        "neither_share": _share(sum(not p and not r for p, r in flags), n),
        "turns_after_items_share": _share(after_items, n),
        "reaction_share_after_items": _share(sum(r for _p, r in flags), after_items),
        "items_suggested": suggested,
        "acceptance_rate": _share(sum(d.accepted for d in dialogs), suggested),
        "acceptance_rate_unseen": _share(sum(d.accepted_unseen for d in dialogs),
                                         sum(d.suggested_unseen for d in dialogs)),
        "dialogs_accepting_share": _share(sum(d.accepted > 0 for d in dialogs),
                                          sum(d.suggested > 0 for d in dialogs)),
    }


def by_group(dialogs: Sequence[Dialog]) -> dict[str, dict]:
    """The statistics per persona (simulated users)."""
    groups: dict[str, list[Dialog]] = {}
    for d in dialogs:
        groups.setdefault(d.group or "(none)", []).append(d)
    return {name: statistics(items) for name, items in sorted(groups.items())}


# (label, statistic, sub-key, what to keep in mind when reading the gap)
ROWS: tuple[tuple[str, str, str | None, str], ...] = (
    ("words per seeker turn, mean", "words_per_turn", "mean", "`@id` mentions count one word in ReDial"),
    ("words per seeker turn, median", "words_per_turn", "median", ""),
    ("seeker turns per dialog, mean", "turns_per_dialog", "mean",
     "ReDial dialogs end when both workers are done; a simulated session ends on acceptance, leaving or 14 turns"),
    ("seeker turns per dialog, median", "turns_per_dialog", "median", ""),
    ("turns stating a preference", "preference_share", None, "rule-based cues, same classifier on both sides"),
    ("turns reacting to items", "reaction_share", None, "only turns right after items were shown can react"),
    ("reacting, of turns right after items", "reaction_share_after_items", None, ""),
    ("turns doing neither", "neither_share", None, "greetings, chit-chat, answers to questions"),
    ("turns right after items were shown", "turns_after_items_share", None, ""),
    ("acceptance per suggested item", "acceptance_rate", None,
     "ReDial: liked, of answered suggestions (includes movies already seen); simulator: accepted of distinct "
     "items shown (lists of up to 5, at most one accepted)"),
    ("dialogs accepting a suggestion", "dialogs_accepting_share", None, "of dialogs with at least one suggestion"),
)


def _value(stats: dict, key: str, sub: str | None) -> float | None:
    value = stats.get(key)
    return value.get(sub) if isinstance(value, dict) and sub else value


def gaps(human: dict, sim: dict) -> list[dict]:
    """One row per statistic: human value, simulator value, difference (sim - human) and ratio."""
    rows = []
    for label, key, sub, note in ROWS:
        h, s = _value(human, key, sub), _value(sim, key, sub)
        both = h is not None and s is not None
        rows.append({"statistic": label, "key": f"{key}.{sub}" if sub else key, "human": h, "simulator": s,
                     "gap": s - h if both else None, "ratio": s / h if both and h else None, "note": note})
    return rows


def readings(rows: Sequence[dict], *, tolerance: float = 0.25) -> list[str]:
    """Plain sentences for the gaps past `tolerance` (relative), largest first."""
    out = []
    for row in sorted((r for r in rows if r["ratio"] is not None), key=lambda r: -abs(np.log(max(r["ratio"], 1e-9)))):
        if abs(row["ratio"] - 1) > tolerance:
            way = "more" if row["ratio"] > 1 else "less"
            out.append(f"{row['statistic']}: the simulator is at {row['ratio']:.2f}x the human value "
                       f"({_fmt(row['simulator'])} vs {_fmt(row['human'])}; {way} than people).")
    return out


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}".rstrip("0").rstrip(".")


def write_calibration_report(result: dict, path: Path) -> Path:
    """reports/simulator-calibration.md: the statistics side by side, the gaps, and what they mean."""
    rows, human, sim = result["gaps"], result["human"], result["simulator"]
    lines = [
        "# Simulator calibration against ReDial's human seekers",
        "",
        f"Run {result['date']} with `{result['command']}`. People: {human['dialogs']:,} ReDial dialogs "
        f"(`{result['redial']}`, {human['seeker_turns']:,} seeker turns). Simulated users: {sim['dialogs']:,} "
        f"sessions of `{result['run']}` ({sim['seeker_turns']:,} simulated-user turns; models "
        f"{result.get('models') or 'as recorded in the run'}).",
        "",
        "| statistic | ReDial seekers | simulator | gap (sim − human) | ratio | note |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = "–" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        lines.append(f"| {r['statistic']} | {_fmt(r['human'])} | {_fmt(r['simulator'])} | {_fmt(r['gap'])} | "
                     f"{ratio} | {r['note']} |")
    if "simulator template" in str(result.get("models")):
        lines += ["", "The simulated users of this run spoke in the simulator's templates (no LLM phrased their "
                  "turns), so the wording statistics (words per turn, preference and reaction cues) describe the "
                  "templates; the acceptance and length statistics come from the simulator's code-decided mindset "
                  "either way. Rerun on an LLM-simulated run for the wording."]
    found = readings(rows)
    lines += ["", "## Gaps past 25%", ""] + ([f"- {line}" for line in found] or ["- none"])
    groups = result.get("by_persona") or {}
    if groups:
        lines += ["", "## Simulated users by persona", "",
                  "| persona | sessions | words / turn | turns / session | preference | reaction | accepting |",
                  "|---|---|---|---|---|---|---|"]
        for name, g in groups.items():
            lines.append(f"| {name} | {g['dialogs']} | {_fmt(g['words_per_turn']['mean'])} | "
                         f"{_fmt(g['turns_per_dialog']['mean'])} | {_fmt(g['preference_share'])} | "
                         f"{_fmt(g['reaction_share'])} | {_fmt(g['dialogs_accepting_share'])} |")
    lines += ["", "## How the statistics are computed", "", _method_text(), ""]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _method_text() -> str:
    doc = __doc__ or ""
    return doc.split("\n\n", 1)[1].strip() if "\n\n" in doc else doc
