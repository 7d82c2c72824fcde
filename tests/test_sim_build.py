from pathlib import Path

from evals.sim_build import LASTFM, MOVIELENS, REPO, build_lastfm, build_movielens, build_redial
from evals.sim_cases import load_cases
from retrieval.loaders import load_catalog
from tests.shared_data import SHARED_DATA, needs_shared_data


def _check(cases, catalog):
    for case in cases:
        need = case.need
        assert need.target_ids and all(i in catalog.items for i in need.target_ids + need.acceptable_ids)
        target = catalog.items[need.target_ids[0]]
        values = {v for vs in target.attributes.values() for v in vs}
        assert all(a.value in values for a in need.must_have)
        assert not any(a.value in values for a in need.must_not)
        assert need.target_titles == [target.title]
        assert target.title.split(" (")[0].lower() not in need.soft.lower()  # the soft text never gives it away


@needs_shared_data("redial")
def test_movielens_and_redial_cases_from_real_data():
    catalog = load_catalog(REPO / MOVIELENS)
    movielens = build_movielens(REPO / MOVIELENS, n=6, seed=1)
    assert len(movielens) == 6 and len({c.persona.name for c in movielens}) >= 5
    _check(movielens, catalog)
    assert movielens == build_movielens(REPO / MOVIELENS, n=6, seed=1)  # seeded
    redial = build_redial(SHARED_DATA / "redial", REPO / MOVIELENS, n=6, seed=1)
    assert len(redial) == 6 and all(c.source == "redial" and c.need.soft for c in redial)
    _check(redial, catalog)


@needs_shared_data("lastfm-unicorn", "lastfm")
def test_lastfm_cases_from_real_data():
    folder = SHARED_DATA / "lastfm-unicorn" / "lastfm"
    cases = build_lastfm(folder, n=4, seed=1)
    assert len(cases) == 4 and all(c.catalog == LASTFM for c in cases)
    _check(cases, load_catalog(folder))


def test_shipped_case_files_load():
    for name in ("movielens", "redial", "lastfm"):
        cases = load_cases(Path(REPO / "evals" / "cases" / f"{name}.jsonl"))
        assert len(cases) == 60 and {c.persona.name for c in cases} >= {"impatient", "uncooperative"}
