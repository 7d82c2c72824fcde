"""Simulated users as data: a persona plus a hidden information need, one JSON object per line of a cases file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agent.state import Attr

Verbosity = Literal["terse", "normal", "chatty"]
Cooperativeness = Literal["cooperative", "neutral", "uncooperative"]
Knowledge = Literal["novice", "casual", "expert"]


class SimCaseError(ValueError):
    """A cases file is malformed; the message names the file, line, case id and field."""


def _attr(value: Any) -> Any:
    """Accept "type=value" as shorthand for {"type": ..., "value": ...}."""
    if isinstance(value, str):
        kind, sep, rest = value.partition("=")
        if not sep or not kind.strip() or not rest.strip():
            raise ValueError(f"attribute {value!r} must look like type=value")
        return {"type": kind.strip(), "value": rest.strip()}
    return value


class Persona(BaseModel):
    """How the simulated user talks and how long it stays."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    patience: int = Field(ge=1, le=30, description="Agent turns the user sits through before leaving.")
    verbosity: Verbosity = "normal"
    cooperativeness: Cooperativeness = "cooperative"
    knowledge: Knowledge = "casual"


class Need(BaseModel):
    """The hidden information need: target ids, must-have and must-not attributes, acceptable ids, soft wishes."""

    model_config = ConfigDict(extra="forbid")

    target_ids: list[str] = Field(default_factory=list)
    target_titles: list[str] = Field(default_factory=list, description="Titles the user must never say.")
    target_attributes: list[Attr] = Field(default_factory=list, description="Every attribute of the target(s).")
    must_have: list[Attr] = Field(default_factory=list)
    must_not: list[Attr] = Field(default_factory=list)
    acceptable_ids: list[str] = Field(default_factory=list)
    soft: str = ""

    @field_validator("target_attributes", "must_have", "must_not", mode="before")
    @classmethod
    def _attrs(cls, value: Any) -> Any:
        return [_attr(v) for v in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _consistent(self) -> Need:
        if not (self.target_ids or self.must_have or self.soft.strip()):
            raise ValueError("a need must name target_ids, must_have attributes or soft wishes")
        clash = set(self.must_have) & set(self.must_not)
        if clash:
            raise ValueError(f"must_have and must_not share {sorted(str(a) for a in clash)}")
        if self.target_ids and len(self.target_titles) != len(self.target_ids):
            raise ValueError("target_titles must give one title per target id (the leakage guard needs them)")
        return self


class SimCase(BaseModel):
    """One simulated user: id, where it came from, which catalog it shops in, persona and need."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    source: str = Field(min_length=1, description="movielens | redial | lastfm | any other origin label")
    catalog: str = Field("data/movielens-latest-small", description="Catalog path, relative to the repository.")
    persona: Persona
    need: Need

    @property
    def wanted_ids(self) -> set[str]:
        """Ids the user would accept: its targets and the acceptable ones."""
        return set(self.need.target_ids) | set(self.need.acceptable_ids)


def _field_path(error: dict[str, Any]) -> str:
    return ".".join(str(part) for part in error["loc"]) or "(case)"


def parse_case(text: str, *, where: str) -> SimCase:
    """One case from one JSON line; SimCaseError names `where`, the case id and the first bad field."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SimCaseError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(raw, dict):
        raise SimCaseError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    case_id = raw.get("id", "(no id)")
    try:
        return SimCase.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise SimCaseError(f"{where}: case {case_id!r}: field {_field_path(error)}: {error['msg']}{more}") from None


def load_cases(path: str | Path) -> list[SimCase]:
    """Every case of a JSONL cases file, or a SimCaseError naming the line, case id and field."""
    path = Path(path)
    if not path.is_file():
        raise SimCaseError(f"{path}: no such cases file")
    cases: list[SimCase] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        case = parse_case(line, where=f"{path}:{number}")
        if case.id in seen:
            raise SimCaseError(f"{path}:{number}: case {case.id!r}: field id: duplicate (first on line {seen[case.id]})")
        seen[case.id] = number
        cases.append(case)
    if not cases:
        raise SimCaseError(f"{path}: no cases")
    return cases


def write_cases(cases: list[SimCase], path: str | Path) -> Path:
    """Write cases as JSONL (one object per line, stable key order)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(c.model_dump(mode="json"), ensure_ascii=False) for c in cases]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# Archetypes the builders draw from (seeded): patience, verbosity, cooperativeness and domain knowledge vary,
# including impatient and uncooperative users.
PERSONAS: tuple[Persona, ...] = (
    Persona(name="patient_expert", patience=10, verbosity="chatty", cooperativeness="cooperative", knowledge="expert"),
    Persona(name="casual_browser", patience=7, verbosity="normal", cooperativeness="cooperative", knowledge="casual"),
    Persona(name="impatient", patience=3, verbosity="terse", cooperativeness="cooperative", knowledge="casual"),
    Persona(name="uncooperative", patience=6, verbosity="terse", cooperativeness="uncooperative", knowledge="novice"),
    Persona(name="vague_novice", patience=6, verbosity="normal", cooperativeness="neutral", knowledge="novice"),
    Persona(name="picky_expert", patience=5, verbosity="normal", cooperativeness="neutral", knowledge="expert"),
    Persona(name="chatty_fan", patience=8, verbosity="chatty", cooperativeness="cooperative", knowledge="expert"),
    Persona(name="impatient_skeptic", patience=4, verbosity="terse", cooperativeness="uncooperative", knowledge="casual"),
)
