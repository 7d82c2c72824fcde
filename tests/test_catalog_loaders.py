"""Loading the real catalogs (MovieLens, LastFM, LastFM*) and the small good custom examples."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import pytest

from retrieval.catalog import Catalog, CatalogError
from retrieval.loaders import ACCEPTED_LAYOUTS, detect_layout, load_catalog
from tests.shared_data import SHARED_DATA as SHARED
from tests.shared_data import needs_shared_data

REPO = Path(__file__).resolve().parents[1]
MOVIELENS = REPO / "data" / "movielens-latest-small"
LASTFM = SHARED / "lastfm-unicorn" / "lastfm"
LASTFM_STAR = SHARED / "lastfm-unicorn" / "lastfm_star"
GOOD = Path(__file__).parent / "data" / "good"



@pytest.fixture(scope="module")
def movielens() -> Catalog:
    return load_catalog(MOVIELENS)


@pytest.fixture(scope="module")
def lastfm() -> Catalog:
    return load_catalog(LASTFM)


@pytest.fixture(scope="module")
def lastfm_star() -> Catalog:
    return load_catalog(LASTFM_STAR)


def test_movielens_counts(movielens: Catalog) -> None:
    stats = movielens.stats()
    assert movielens.name == "movielens-latest-small"
    assert stats["items"] == 9742
    assert stats["interactions"] == 100836
    assert stats["users"] == 610
    assert stats["attribute_types"]["genre"] == 19  # 20 genres minus "(no genres listed)"
    assert movielens.splits == {}


def test_movielens_toy_story(movielens: Catalog) -> None:
    toy = movielens.get("1")
    assert toy is not None
    assert toy.title == "Toy Story (1995)"
    assert toy.attributes == {
        "genre": ["Adventure", "Animation", "Children", "Comedy", "Fantasy"],
        "year": ["1995"],
        "decade": ["1990s"],
        "tag": ["fun", "pixar"],
    }
    assert toy.keywords == ["adventure", "animation", "children", "comedy", "fantasy", "fun", "pixar"]
    assert toy.text.startswith("Toy Story (1995) is an adventure, animation")
    assert "pixar" in toy.text


def test_movielens_csv_quoting_and_edge_titles(movielens: Catalog) -> None:
    assert movielens.items["318"].title == "Shawshank Redemption, The (1994)"
    assert movielens.items["7789"].title == "11'09\"01 - September 11 (2002)"
    death_note = movielens.items["171749"]  # "(2006–2007)", "(no genres listed)"
    assert death_note.attributes == {"year": ["2006"], "decade": ["2000s"]}
    assert "year" not in movielens.items["40697"].attributes  # "Babylon 5" has no year


def test_movielens_ratings_are_typed(movielens: Catalog) -> None:
    first = movielens.interactions[0]
    assert (first.user, first.item, first.rating, first.timestamp) == ("1", "1", 4.0, 964982703)
    assert all(i.item in movielens for i in movielens.interactions)


def test_movielens_tags_normalised(movielens: Catalog) -> None:
    for item in movielens.items.values():
        tags = item.attributes.get("tag", [])
        assert tags == sorted(set(tags))
        assert all(t == t.strip().lower() and t for t in tags)


@needs_shared_data("movielens-latest-small")
def test_movielens_repo_copy_is_byte_identical() -> None:
    source = SHARED / "movielens-latest-small"
    names = sorted(p.name for p in source.iterdir())
    assert "README.txt" in names
    assert sorted(p.name for p in MOVIELENS.iterdir()) == names
    match, mismatch, errors = filecmp.cmpfiles(source, MOVIELENS, names, shallow=False)
    assert (mismatch, errors) == ([], [])


@needs_shared_data("lastfm-unicorn", "lastfm")
def test_lastfm(lastfm: Catalog) -> None:
    stats = lastfm.stats()
    assert lastfm.name == "lastfm"
    assert stats["items"] == 7432
    assert stats["attributes"] == 33
    assert stats["users"] == 1801
    assert stats["splits"] == {"train": 52910, "valid": 11891, "test": 11892}
    assert stats["interactions"] == 52910
    first = lastfm.items["0"]
    assert first.title == "The Honorary Title"
    assert first.attributes == {"tag": ["rock", "alternative"]}
    assert len(lastfm.attribute_ids) == 33
    assert lastfm.attribute_ids["rock"] == "2"
    assert lastfm.attribute_ids["alternative"] == "3"


@needs_shared_data("lastfm-unicorn", "lastfm_star")
def test_lastfm_star(lastfm_star: Catalog) -> None:
    stats = lastfm_star.stats()
    assert lastfm_star.name == "lastfm_star"
    assert stats["items"] == 7432
    assert stats["attributes"] == 8438
    assert stats["splits"]["test"] == 11892
    assert lastfm_star.items["0"].attributes == {"tag": ["rock", "alternative"]}
    assert lastfm_star.attribute_ids["rock"] == "69"
    assert len(lastfm_star.attribute_ids) == 8438


@needs_shared_data("lastfm-unicorn", "lastfm")
def test_lastfm_split_ids_are_item_dict_keys(lastfm: Catalog) -> None:
    test_pairs = json.loads((LASTFM / "UI_Interaction_data" / "review_dict_test.json").read_text())
    user, items = next(iter(test_pairs.items()))
    got = [i.item for i in lastfm.splits["test"] if i.user == user]
    assert got == [str(i) for i in items]


def _write_unicorn(folder: Path, tag_names: list[str]) -> None:
    files = {
        "Graph_generate_data/item_dict.json": {"0": {"feature_index": list(range(len(tag_names)))}},
        "Graph_generate_data/user_item_train.json": {"7": [0]},
        "ID_map_info/item_reverse_map.json": {"0": {"real_id": [1], "real_name": ["Band"]}},
        "ID_map_info/tag_reverse_map.json": {
            str(i): {"real_id": [100 + i], "real_name": [name]} for i, name in enumerate(tag_names)
        },
        "UI_Interaction_data/review_dict_train.json": {"7": [0]},
        "UI_Interaction_data/review_dict_valid.json": {},
        "UI_Interaction_data/review_dict_test.json": {"7": [0]},
    }
    for relative, content in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(json.dumps(content))


def test_unicorn_duplicate_tag_names_are_disambiguated(tmp_path: Path) -> None:
    _write_unicorn(tmp_path, ["rock", "rock", "jazz"])
    catalog = load_catalog(tmp_path)
    assert catalog.items["0"].attributes == {"tag": ["rock", "rock (#1)", "jazz"]}
    assert catalog.attribute_ids == {"rock": "0", "rock (#1)": "1", "jazz": "2"}
    assert catalog.stats()["attributes"] == 3
    assert catalog.splits["test"][0] is catalog.interactions[0]  # equal pairs share one object


@pytest.mark.parametrize("name", sorted(p.name for p in GOOD.iterdir()))
def test_every_good_example_loads(name: str) -> None:
    catalog = load_catalog(GOOD / name)
    assert len(catalog) >= 2
    assert all(item.title for item in catalog.items.values())


def test_good_jsonl_books() -> None:
    catalog = load_catalog(GOOD / "books.jsonl")
    assert catalog.name == "books"
    assert list(catalog.items) == ["b1", "b2", "b3"]
    hobbit = catalog.items["b1"]
    assert hobbit.attributes == {
        "author": ["J. R. R. Tolkien"],
        "genre": ["fantasy", "adventure"],
        "year": ["1937"],
    }
    assert hobbit.keywords == ["dragon", "quest"]
    assert catalog.items["b3"].attributes == {"author": ["Jane Austen"]}  # empty genre list dropped
    assert catalog.items["b3"].text == ""


def test_good_jsonl_with_bom() -> None:
    catalog = load_catalog(str(GOOD / "bom.jsonl"))  # a str path works too
    assert list(catalog.items) == ["c1", "c2"]
    assert catalog.items["c1"].title == "Café Society"


def test_good_csv_shop() -> None:
    catalog = load_catalog(GOOD / "shop.csv")
    shoe, mug, lamp = catalog.items["s1"], catalog.items["s2"], catalog.items["s3"]
    assert shoe.title == "Trail Shoe, Waterproof"
    assert shoe.text == "Grippy sole.\r\nWorks in rain."
    assert shoe.attributes == {"brand": ["Acme"], "color": ["black", "grey"]}
    assert shoe.keywords == ["hiking", "outdoor"]
    assert mug.title == 'The "Classic" Mug'
    assert mug.keywords == []
    assert lamp.attributes == {"brand": ["Lumo"]}
    assert lamp.keywords == ["desk", "lamp"]


def test_good_folder_with_manifest_and_interactions() -> None:
    catalog = load_catalog(GOOD / "coffee_shop")
    assert catalog.name == "coffee"
    assert catalog.items["k1"].attributes["flavour_note"] == ["jasmine", "lemon"]
    rows = [(i.user, i.item, i.rating, i.timestamp) for i in catalog.interactions]
    assert rows == [("ana", "k1", 5.0, 1700000000), ("ana", "k3", None, None), ("ben", "k2", 3.5, 1700000500)]
    assert catalog.stats()["users"] == 2


def test_good_csv_folder_with_jsonl_interactions() -> None:
    catalog = load_catalog(GOOD / "films_csv")
    assert catalog.name == "films_csv"
    assert catalog.items["f1"].attributes == {"genre": ["horror", "science fiction"], "director": ["Ridley Scott"]}
    assert [(i.user, i.item) for i in catalog.interactions] == [("u1", "f1"), ("u2", "f2")]


def test_detect_layout() -> None:
    assert detect_layout(MOVIELENS) == "movielens"
    assert detect_layout(GOOD / "coffee_shop") == "custom"
    assert detect_layout(GOOD / "shop.csv") == "custom"


def test_missing_path_lists_accepted_layouts(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as info:
        load_catalog(tmp_path / "nowhere")
    assert info.value.line is None
    assert ACCEPTED_LAYOUTS in str(info.value)
    assert "MovieLens" in str(info.value) and "UNICORN" in str(info.value)


def test_people_and_description_fields(tmp_path):
    from retrieval.loaders import load_catalog

    items = tmp_path / "films.jsonl"
    items.write_text(
        '{"id": "1", "title": "Alien (1979)", "description": "A crew meets a creature.", '
        '"people": {"director": "Ridley Scott", "star": ["Sigourney Weaver"]}, "attributes": {"genre": "Horror"}}\n',
        encoding="utf-8")
    item = load_catalog(items).items["1"]
    assert item.text == "A crew meets a creature."
    assert item.attributes == {"genre": ["Horror"], "director": ["Ridley Scott"], "star": ["Sigourney Weaver"]}
    csv_file = tmp_path / "films.csv"
    csv_file.write_text("id,title,description,people:cast\n2,Heat (1995),Cops and robbers.,Al Pacino|Robert De Niro\n",
                        encoding="utf-8")
    assert load_catalog(csv_file).items["2"].attributes == {"cast": ["Al Pacino", "Robert De Niro"]}


def test_people_role_and_text_twice_are_refused_with_the_line(tmp_path):
    from retrieval.catalog import CatalogError
    from retrieval.loaders import load_catalog

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "title": "A"}\n{"id": "2", "title": "B", "people": {"grip": "X"}}\n', encoding="utf-8")
    with pytest.raises(CatalogError, match=r"bad.jsonl:2: .*people"):
        load_catalog(bad)
    both = tmp_path / "both.jsonl"
    both.write_text('{"id": "1", "title": "A", "text": "x", "description": "y"}\n', encoding="utf-8")
    with pytest.raises(CatalogError, match=r"both.jsonl:1: .*not both"):
        load_catalog(both)
