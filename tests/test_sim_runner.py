import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evals.sim_runner import read_records, run_sim, session_plan
from evals.simulators.llm import simulator_factory
from sim_support import amelie_case, shining_case, tiny_service

REPO = Path(__file__).resolve().parents[1]


def _cases():
    return [shining_case(), amelie_case(), shining_case("impatient", patience=2, cooperativeness="uncooperative")]


def test_plan_is_paired_and_seeded():
    plan = session_plan(_cases(), 7, seed=5)
    assert [(c.id, s) for c, s in plan][:4] == [("shining", 5), ("amelie", 5), ("impatient", 5), ("shining", 6)]
    assert len(plan) == 7


def test_record_has_the_public_fields(tmp_path):
    service = tiny_service()
    records = run_sim(_cases(), service_factory=lambda case: service, simulator_factory=simulator_factory(None),
                      sessions=3, concurrency=1, seed=0, out_jsonl=tmp_path / "run.jsonl")
    assert len(records) == 3
    for key in ("case_id", "seed", "success", "turns", "abandoned", "reflections", "reflections_honoured",
                "invalid_ids_shown", "judge", "tokens", "latency_s", "leak_count", "transcript"):
        assert key in records[0], key
    assert records[0]["success"] and records[0]["accepted_id"] == "7"
    assert records[0]["transcript"][0]["role"] == "user"
    assert records[0]["models"] == {"agent": "none", "simulator": "template", "judge": None}
    assert all(r["invalid_ids_shown"] == 0 for r in records)


class Boom(RuntimeError):
    pass


def _failing_factory(after: int):
    made = {"n": 0}
    inner = simulator_factory(None)

    def make(case, seed, catalog):
        made["n"] += 1
        if made["n"] > after:
            raise Boom(f"injected after {after} sessions")
        return inner(case, seed, catalog)

    return make


@pytest.mark.parametrize("concurrency", [1, 3])
def test_crash_midway_then_rerun_loses_nothing_and_repeats_nothing(tmp_path, concurrency):
    out = tmp_path / "run.jsonl"
    service = tiny_service()
    with pytest.raises(Boom):
        run_sim(_cases(), service_factory=lambda case: service, simulator_factory=_failing_factory(4),
                sessions=9, concurrency=concurrency, seed=0, out_jsonl=out)
    first = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(first) == 4
    advanced = []
    records = run_sim(_cases(), service_factory=lambda case: service, simulator_factory=simulator_factory(None),
                      sessions=9, concurrency=concurrency, seed=0, out_jsonl=out, progress=advanced.append)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    keys = [(r["case_id"], r["seed"]) for r in lines]
    assert len(keys) == len(set(keys)) == 9  # nothing repeated, nothing lost
    assert sum(advanced) == 9 and advanced[0] == 4  # the resumed ones are reported first
    assert [(r["case_id"], r["seed"]) for r in records] == [(c.id, s) for c, s in session_plan(_cases(), 9, 0)]
    for old in first:  # finished sessions are kept as they were, not replayed
        assert old in lines


def test_torn_last_line_is_cut_off(tmp_path):
    out = tmp_path / "run.jsonl"
    out.write_text('{"case_id": "a", "seed": 0}\n{"case_id": "b", "se')
    assert list(read_records(out)) == [("a", 0)]
    assert out.read_text() == '{"case_id": "a", "seed": 0}\n'


KILLED_RUN = """
import sys, time
sys.path.insert(0, {tests!r})
from pathlib import Path
from evals.sim_runner import run_sim
from evals.simulators.llm import simulator_factory
from sim_support import amelie_case, shining_case, tiny_service
service = tiny_service()
inner = simulator_factory(None)
def slow(case, seed, catalog):
    time.sleep(0.4)
    return inner(case, seed, catalog)
run_sim([shining_case(), amelie_case()], service_factory=lambda c: service, simulator_factory=slow,
        sessions=40, concurrency=2, seed=3, out_jsonl=Path({out!r}))
"""


def test_killed_process_then_rerun(tmp_path):
    out = tmp_path / "run.jsonl"
    script = KILLED_RUN.format(tests=str(REPO / "tests"), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 3):
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    before = read_records(out)
    assert 3 <= len(before) < 40
    service = tiny_service()
    records = run_sim([shining_case(), amelie_case()], service_factory=lambda c: service,
                      simulator_factory=simulator_factory(None), sessions=40, concurrency=2, seed=3, out_jsonl=out)
    keys = [(json.loads(line)["case_id"], json.loads(line)["seed"]) for line in out.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 40
    assert {(r["case_id"], r["seed"]) for r in records} == set(keys)
