"""ReDial metrics as iEvaLM counts them, checked by hand; the harness with a fake service; roles; the catalog."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from evals.redial.metrics import label_scores, sample_sums, summarise
from evals.redial.run import Sample, done_rows, load_samples, roles, run, summary
from tests.shared_data import SHARED_DATA, needs_shared_data

REPO = Path(__file__).resolve().parents[1]
REDIAL = SHARED_DATA / "redial"


def test_label_scores_by_hand():
    s = label_scores(["a", "b", "c"], "c")  # 0-based rank 2
    assert s["recall@1"] == 0 and s["recall@10"] == 1 and s["mrr@10"] == pytest.approx(1 / 3)
    assert s["ndcg@10"] == pytest.approx(1 / math.log2(4))
    assert label_scores(["a"], "z")["recall@50"] == 0


def test_every_label_counts_and_means_are_over_labels():
    rows = [sample_sums(["a", "b"], ["a", "b", "z"]), sample_sums(["q"], ["q"])]
    out = summarise(rows, rounds=200)
    assert out["labels"]["value"] == 4
    assert out["recall@1"]["value"] == pytest.approx(2 / 4)  # a (rank 0) and q (rank 0); b is at rank 1
    assert out["recall@10"]["value"] == pytest.approx(3 / 4)
    low, high = out["recall@10"]["ci95"]
    assert low <= 0.75 <= high


def test_roles_end_with_the_seeker_and_alternate():
    assert roles(["", "Hi", "I like horror"]) == ["user", "assistant", "user"]
    assert roles(["a", "b"]) == ["assistant", "user"]


class FakeService:
    """Records what it observes; ranks a fixed list minus what it saw named."""

    def __init__(self, ranking: list[str]) -> None:
        self.ranking, self.seen, self.sessions = ranking, {}, 0

    def start(self) -> str:
        self.sessions += 1
        self.seen[str(self.sessions)] = []
        return str(self.sessions)

    def end(self, session_id: str) -> bool:
        return True

    def observe(self, session_id: str, text: str, *, role: str) -> None:
        self.seen[session_id].append((role, text))

    def rank(self, session_id: str, *, k: int) -> list[str]:
        return self.ranking[:k]


def test_harness_scores_resumes_and_marks_labels_named_in_context(tmp_path):
    samples = [Sample(0, "d1", 2, ("", "Hi", "I loved Alien (1979)"), ("Aliens (1986)", "Alien (1979)")),
               Sample(1, "d2", 2, ("", "Hello", "horror please"), ("Heat (1995)",))]
    names = {"1": "Aliens (1986)", "2": "Heat (1995)", "3": "Alien (1979)"}
    service = FakeService(["2", "1"])
    out = tmp_path / "runs" / "redial-test.jsonl"
    rows = run(service, samples[:1], names, out=out)
    assert service.seen["1"] == [("assistant", "Hi"), ("user", "I loved Alien (1979)")]  # "" is not observed
    assert rows[0]["in_context"] == [False, True]
    again = FakeService(["2", "1"])
    rows = run(again, samples, names, out=out)
    assert again.sessions == 1 and len(rows) == 2 and len(done_rows(out)) == 2
    s = summary(rows)
    assert s["labels"] == 3 and s["labels_in_context"] == 1
    assert s["all"]["recall@1"]["value"] == pytest.approx(1 / 3)  # Heat at rank 0 of sample 2
    assert s["not_in_context"]["recall@10"]["value"] == pytest.approx(1.0)


def test_torn_last_line_is_ignored(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"index": 0}) + "\n{\"index\": 1", "utf-8")
    assert list(done_rows(path)) == [0]


@needs_shared_data("redial")
def test_roles_match_the_raw_dialogs():
    raw = {}
    for line in (REDIAL / "valid_data.jsonl").read_text("utf-8").splitlines():
        d = json.loads(line)
        raw[d["conversationId"]] = d
    for sample in load_samples(REDIAL / "valid_data_processed.jsonl", limit=300):
        d = raw[sample.dialog_id]
        merged: list[str] = []
        for m in d["messages"]:
            role = "assistant" if m["senderWorkerId"] == d["respondentWorkerId"] else "user"
            if not merged or merged[-1] != role:
                merged.append(role)
        said = [r for r, text in zip(roles(sample.context), sample.context) if text]
        assert said == merged[: len(said)]


@needs_shared_data("redial")
def test_catalog_from_id2info_with_movielens_ratings():
    from evals.redial.catalog import load_redial_catalog, title_index

    catalog = load_redial_catalog(REDIAL / "id2info.json", movielens=REPO / "data" / "movielens-latest-small")
    assert len(catalog) == 6583 and len(catalog.interactions) > 50_000
    assert {"Horror", "Sci-Fi"} <= set(catalog.attribute_counts["genre"])
    assert {"director", "writer", "star", "year", "decade"} <= set(catalog.attribute_counts)
    index = title_index(catalog)
    labels = [r for s in load_samples(REDIAL / "valid_data_processed.jsonl") for r in s.labels]
    assert len(labels) == 3595 and all(label in index for label in labels)
