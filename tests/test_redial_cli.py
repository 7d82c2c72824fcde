"""`concierge eval redial` end to end on a tiny data root with a fake service (the real one is measured in reports/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from evals.cli.redial import ABLATIONS, configured, redial_command
from conversation.settings import Settings

INFO = {
    "1": {"name": "Alien (1979)", "genre": ["horror", "sci-fi"], "plot": "A crew meets a creature.",
          "director": ["Ridley Scott"], "writer": ["Dan O'Bannon"], "star": ["Sigourney Weaver"], "imdb_id": "tt0078748"},
    "2": {"name": "Aliens (1986)", "genre": ["action"], "plot": "She returns.", "director": ["James Cameron"],
          "writer": [], "star": ["Sigourney Weaver"], "imdb_id": "tt0090605"},
    "3": {"name": "Heat (1995)", "genre": ["crime"], "plot": "A heist.", "director": ["Michael Mann"],
          "writer": [], "star": ["Al Pacino"], "imdb_id": "tt0113277"},
}
SAMPLES = [
    {"dialog_id": "9", "turn_id": 2, "context": ["", "Hi!", "I loved Alien (1979)"], "entity": [], "rec": ["Aliens (1986)"]},
    {"dialog_id": "9", "turn_id": 4, "context": ["", "Hi!", "I loved Alien (1979)", "Try Aliens (1986)", "ok"],
     "entity": [], "rec": ["Heat (1995)", "Aliens (1986)"]},
]
RAW = {"conversationId": "9", "movieMentions": {"11": "Alien  (1979)", "12": "Heat (1995)"},
       "respondentWorkerId": 1, "initiatorWorkerId": 2,
       "messages": [{"senderWorkerId": 2, "text": "I loved @11 and also @12"}, {"senderWorkerId": 1, "text": "Up for it?"}]}


class FakeService:
    def __init__(self) -> None:
        self.observed: list[tuple[str, str]] = []

    def start(self) -> str:
        return "s"

    def end(self, session_id: str) -> bool:
        return True

    def observe(self, session_id: str, text: str, *, role: str) -> None:
        self.observed.append((role, text))

    def rank(self, session_id: str, *, k: int) -> list[str]:
        return ["2", "3"][:k]


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "data" / "redial"
    folder.mkdir(parents=True)
    (folder / "id2info.json").write_text(json.dumps(INFO), "utf-8")
    (folder / "valid_data_processed.jsonl").write_text("".join(json.dumps(s) + "\n" for s in SAMPLES), "utf-8")
    (folder / "valid_data.jsonl").write_text(json.dumps(RAW) + "\n", "utf-8")
    return tmp_path / "data"


def _run(root: Path, tmp_path: Path, **kwargs):
    settings = Settings(data_dir=tmp_path / "state", _env_file=None)
    options = {"data": None, "limit": None, "as_json": True, "ablations": [], "fresh": False, "linking": False}
    options.update(kwargs)
    return redial_command(data_root=root, settings=settings, reports=tmp_path / "reports",
                          movielens=tmp_path / "none", **options)


def test_benchmark_scores_every_label_and_writes_the_report(root, tmp_path):
    services: list[FakeService] = []
    result = _run(root, tmp_path, make_service=lambda s, c: services.append(FakeService()) or services[-1])
    s = result["summary"]
    assert s["samples"] == 2 and s["labels"] == 3
    assert s["all"]["recall@1"]["value"] == pytest.approx(2 / 3)  # Aliens first in both samples, Heat second
    assert s["all"]["recall@10"]["value"] == pytest.approx(1.0)
    assert s["labels_in_context"] == 1  # "Aliens (1986)" was already named in sample 2's context
    assert ("assistant", "Hi!") in services[0].observed and ("user", "ok") in services[0].observed
    report = Path(result["report"]).read_text("utf-8")
    assert "UniCRS" in report and "recall@10" in report and "[" in report
    assert Path(result["runs_file"]).name == "redial-full.jsonl"


def test_rerun_skips_scored_samples_and_fresh_starts_over(root, tmp_path):
    first = FakeService()
    _run(root, tmp_path, make_service=lambda s, c: first, limit=1)
    second = FakeService()
    result = _run(root, tmp_path, make_service=lambda s, c: second)
    assert len(second.observed) == 4 and result["summary"]["samples"] == 2  # only sample 2 was read again
    third = FakeService()
    _run(root, tmp_path, make_service=lambda s, c: third, fresh=True)
    assert len(third.observed) == 6


def test_ablations_are_settings_toggles_and_unknown_names_are_refused():
    settings = Settings(_env_file=None)
    changed, update = configured(settings, ["no-linking", "no-collaborative"])
    assert changed.link_entities is False and changed.collaborative is False and changed.read_with_llm is False
    assert set(ABLATIONS) >= {"no-linking", "no-collaborative", "no-search", "llm-reader"}
    with pytest.raises(typer.BadParameter):
        configured(settings, ["no-such-thing"])


def test_linking_accuracy_report(root, tmp_path):
    result = _run(root, tmp_path, linking=True)
    r = result["linking"]
    assert r["true_mentions"] == 2 and 0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1
    assert Path(result["report"]).name == "redial-linking.md"
