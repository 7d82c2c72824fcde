"""Entity linker: titles and people in free text, sentiment per clause, against a handmade and the demo catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from conversation.linker import EntityLinker, Mention, mask_mentions, title_aliases
from agent.state import Attr
from retrieval.catalog import Catalog, Interaction, Item

REPO = Path(__file__).resolve().parents[1]
MOVIELENS = REPO / "data" / "movielens-latest-small"


def _catalog() -> Catalog:
    rows = [
        ("m1", "Matrix, The (1999)", {"director": ["Lana Wachowski", "Lilly Wachowski"]}, 50),
        ("m2", "Dark Knight, The (2008)", {"director": ["Christopher Nolan"], "star": ["Christian Bale"]}, 40),
        ("m3", "Heat (1995)", {"director": ["Michael Mann"], "star": ["Al Pacino"]}, 30),
        ("m4", "Alien (1979)", {"director": ["Ridley Scott"]}, 30),
        ("m5", "Up (2009)", {}, 20),
        ("m6", "It (2017)", {}, 10),
        ("m7", "Star Wars: Episode IV - A New Hope (1977)", {}, 30),
        ("m8", "Star Wars: Episode V - The Empire Strikes Back (1980)", {}, 28),
        ("m9", "Lion King, The (1994)", {}, 5),
        ("m10", "Lion King, The (2019)", {}, 20),
        ("m11", "Schindler's List (1993)", {"director": ["Steven Spielberg"]}, 25),
        ("m12", "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)", {}, 15),
        ("m13", "Harry Potter and the Sorcerer's Stone (a.k.a. Harry Potter and the Philosopher's Stone) (2001)",
         {}, 15),
        ("m14", "Comedy (1999)", {"genre": ["Comedy"]}, 1),
        ("m15", "Blade Runner: The Final Cut (1982)", {}, 3),
        ("m16", "Inception (2010)", {"director": ["Christopher Nolan"]}, 35),
    ]
    items = [Item(id=i, title=t, attributes={"genre": ["Drama"], **a}) for i, t, a, _n in rows]
    interactions = [Interaction(user=f"u{k}", item=i) for i, _t, _a, n in rows for k in range(n)]
    return Catalog(name="tiny", items=items, interactions=interactions)


@pytest.fixture(scope="module")
def linker() -> EntityLinker:
    return EntityLinker.from_catalog(_catalog())


def _ids(linker: EntityLinker, text: str) -> list[str | None]:
    return [m.item_id for m in linker.link(text)]


def test_title_aliases_move_the_article_and_keep_alternate_titles():
    year, aliases = title_aliases("Matrix, The (1999)")
    assert year == 1999 and ("the matrix", 0) in aliases and ("matrix", 1) in aliases
    _year, aliases = title_aliases("Harry Potter and the Sorcerer's Stone (a.k.a. Harry Potter and the Philosopher's Stone) (2001)")
    assert ("harry potter and the philosophers stone", 0) in aliases
    _year, aliases = title_aliases("Star Wars: Episode IV - A New Hope (1977)")
    assert ("star wars", 2) in aliases


@pytest.mark.parametrize("text", ["like the matrix", "I loved The Matrix", "Matrix, The", "the matrix 1999",
                                  "The Matrix (1999)", "the Matrix."])
def test_titles_with_or_without_year_article_and_case(linker, text):
    assert _ids(linker, text) == ["m1"]


def test_offsets_surface_and_year_span(linker):
    text = "not in the mood for anything like Alien (1979), thanks"
    [m] = linker.link(text)
    assert (m.surface, text[m.start:m.end], m.item_id, m.sentiment) == ("Alien (1979)", "Alien (1979)", "m4", "disliked")


def test_apostrophes_accents_and_alternate_titles(linker):
    assert _ids(linker, "schindlers list") == ["m11"]
    assert _ids(linker, "I adored Amelie") == ["m12"]
    assert _ids(linker, "harry potter and the philosopher's stone") == ["m13"]


def test_small_typos(linker):
    [m] = linker.link("I liked Schindlr's List a lot")
    assert m.item_id == "m11" and m.score < 1.0


def test_remakes_prefer_the_year_then_popularity(linker):
    assert _ids(linker, "the lion king 1994") == ["m9"]
    assert _ids(linker, "the lion king") == ["m10"]


def test_partial_titles_only_when_one_film_dominates(linker):
    assert _ids(linker, "star wars") == []  # 30 vs 28 ratings: ambiguous
    assert _ids(linker, "blade runner") == ["m15"]  # the only film the partial title fits


@pytest.mark.parametrize("text", ["I want something up beat", "it was fun", "Her dog liked it", "Up for it?",
                                  "alien", "Alien", "heat", "i'd like a comedy", "it 2017", '"up" was great'])
def test_common_words_are_not_titles_without_evidence(linker, text):
    assert _ids(linker, text) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("I liked Up", ["m5"]), ('"Up" was great', ["m5"]), ("It (2017)", ["m6"]), ("I loved It", ["m6"]), ("like alien", ["m4"]),
    ("alien 1979", ["m4"]), ("Could you find something with Heat in it", ["m3"]), ("I'd like a Comedy", ["m14"]),
    ("I loved The Dark Knight and heat", ["m2", "m3"]),
])
def test_short_titles_with_evidence(linker, text, expected):
    assert _ids(linker, text) == expected


def test_people_by_full_name_and_unique_capitalised_surname(linker):
    [m] = linker.link("anything by christopher nolan")
    assert m.kind == "attribute" and m.attr == Attr(type="director", value="Christopher Nolan")
    assert [m.attr for m in linker.link("I like Pacino")] == [Attr(type="star", value="Al Pacino")]
    assert linker.link("I like pacino") == []
    assert linker.link("Wachowski films") == []  # two people share the surname


@pytest.mark.parametrize(("text", "sentiments"), [
    ("Something like Inception please", ["liked"]),
    ("I hated Inception", ["disliked"]),
    ("I didn't like The Matrix", ["disliked"]),
    ("not a fan of The Matrix", ["disliked"]),
    ("I can't stand The Matrix", ["disliked"]),
    ("anything but The Matrix", ["disliked"]),
    ("I've already seen Inception", ["seen"]),
    ("I watched The Matrix last night", ["seen"]),
    ("I watched The Matrix and loved it", ["liked"]),
    ("I've never seen Inception", ["liked"]),
    ("The Matrix is not my thing", ["disliked"]),
    ("I loved The Matrix but hated Inception", ["liked", "disliked"]),
    ("I hated Inception, The Matrix and Heat", ["disliked", "disliked", "disliked"]),
    ("I didn't like The Matrix, I loved Inception", ["disliked", "liked"]),
])
def test_sentiment_per_clause(linker, text, sentiments):
    assert [m.sentiment for m in linker.link(text)] == sentiments


def test_mentions_do_not_overlap_and_come_in_text_order(linker):
    mentions = linker.link("The Dark Knight, The Matrix and Inception")
    assert [m.item_id for m in mentions] == ["m2", "m1", "m16"]
    assert all(a.end <= b.start for a, b in zip(mentions, mentions[1:]))


def test_mask_mentions_blanks_linked_spans(linker):
    text = "I loved The Dark Knight, something dark"
    masked = mask_mentions(text, linker.link(text))
    assert len(masked) == len(text) and "Knight" not in masked and masked.endswith("something dark")
    assert mask_mentions("abc", [Mention(kind="item", surface="b", start=1, end=2, item_id="x")]) == "a c"


def test_builds_and_links_in_a_100k_item_catalog():
    items = [Item(id=str(n), title=f"Film Number {n} Of The Great Series ({1950 + n % 70})",
                  attributes={"director": [f"Person {n % 5000} Name"]}) for n in range(100_000)]
    catalog = Catalog(name="big", items=items)
    linker = EntityLinker.from_catalog(catalog)  # its time is measured by `concierge bench chat` (start-up)
    assert _ids(linker, "film number 42 of the great series") == ["42"]


@pytest.mark.skipif(not MOVIELENS.is_dir(), reason="demo catalog not present")
def test_demo_catalog_examples():
    from retrieval.loaders import load_catalog

    catalog = load_catalog(MOVIELENS)
    catalog.popularity, catalog.attribute_counts  # catalog-wide caches the rest of the service builds anyway
    linker = EntityLinker.from_catalog(catalog)

    def titles(text: str) -> list[tuple[str, str]]:
        return [(catalog.items[m.item_id].title, m.sentiment) for m in linker.link(text) if m.item_id]

    assert titles("Something like Toy Story please") == [("Toy Story (1995)", "liked")]
    assert titles("like the matrix") == [("Matrix, The (1999)", "liked")]
    assert titles("Movies similar to The Notebook") == [("Notebook, The (2004)", "liked")]
    assert titles("I loved The Dark Knight and Heat, what else would I like?") == [
        ("Dark Knight, The (2008)", "liked"), ("Heat (1995)", "liked")]
    assert titles("I hated Titanic") == [("Titanic (1997)", "disliked")]
    assert titles("I've already seen Inception") == [("Inception (2010)", "seen")]
    assert titles("not in the mood for anything like Alien (1979)") == [("Alien (1979)", "disliked")]
    assert titles("the dark knight") == [("Dark Knight, The (2008)", "liked")]
    assert titles("star wars") == []
    assert titles("I want a funny movie for tonight, up for anything") == []


def test_a_surname_that_is_an_everyday_word_or_opens_a_sentence_is_not_a_person():
    from retrieval.catalog import Catalog, Item

    catalog = Catalog(name="people", items=[
        Item(id="1", title="A Film (2001)", attributes={"star": ["Meagan Good", "Christopher Nolan"]}),
    ])
    linker = EntityLinker.from_catalog(catalog)
    assert linker.link("Good movie, thanks!") == []
    assert linker.link("That was Good fun") == []
    assert [m.attr.value for m in linker.link("Anything by Nolan?")] == ["Christopher Nolan"]
    assert linker.link("Nolan is great") == []  # a capital at a sentence start says nothing
