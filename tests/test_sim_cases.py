import json

import pytest

from evals.sim_cases import PERSONAS, SimCaseError, load_cases, write_cases
from sim_support import amelie_case, shining_case


def _write(tmp_path, rows):
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_roundtrip(tmp_path):
    path = write_cases([shining_case(), amelie_case()], tmp_path / "c.jsonl")
    cases = load_cases(path)
    assert [c.id for c in cases] == ["shining", "amelie"]
    assert str(cases[0].need.must_have[0]) == "genre=Horror"
    assert cases[1].wanted_ids == {"8", "2"}


def test_bad_field_names_line_case_and_field(tmp_path):
    good = shining_case().model_dump(mode="json")
    bad = amelie_case().model_dump(mode="json")
    bad["persona"]["patience"] = 0
    path = _write(tmp_path, [good, bad])
    with pytest.raises(SimCaseError, match=r"cases.jsonl:2: case 'amelie': field persona.patience"):
        load_cases(path)


def test_bad_attribute_shorthand(tmp_path):
    bad = shining_case().model_dump(mode="json")
    bad["need"]["must_have"] = ["Horror"]
    with pytest.raises(SimCaseError, match=r":1: case 'shining': field need.must_have.*type=value"):
        load_cases(_write(tmp_path, [bad]))


def test_missing_titles_for_targets(tmp_path):
    bad = shining_case().model_dump(mode="json")
    bad["need"]["target_titles"] = []
    with pytest.raises(SimCaseError, match=r"case 'shining': field need.*target_titles"):
        load_cases(_write(tmp_path, [bad]))


def test_not_json_and_duplicates_and_empty(tmp_path):
    with pytest.raises(SimCaseError, match=r"cases.jsonl:2: not valid JSON"):
        load_cases(_write(tmp_path, [shining_case().model_dump(mode="json"), "{oops"]))
    row = shining_case().model_dump(mode="json")
    with pytest.raises(SimCaseError, match=r":2: case 'shining': field id: duplicate \(first on line 1\)"):
        load_cases(_write(tmp_path, [row, row]))
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(SimCaseError, match="no cases"):
        load_cases(tmp_path / "empty.jsonl")
    with pytest.raises(SimCaseError, match="no such cases file"):
        load_cases(tmp_path / "missing.jsonl")


def test_unknown_field_is_named(tmp_path):
    row = shining_case().model_dump(mode="json")
    row["need"]["wish"] = "typo"
    with pytest.raises(SimCaseError, match="field need.wish: Extra inputs"):
        load_cases(_write(tmp_path, [row]))


def test_personas_cover_impatient_and_uncooperative():
    assert min(p.patience for p in PERSONAS) <= 3
    assert {"uncooperative", "cooperative"} <= {p.cooperativeness for p in PERSONAS}
    assert {"novice", "expert"} <= {p.knowledge for p in PERSONAS}
    assert {"terse", "chatty"} <= {p.verbosity for p in PERSONAS}
