"""Small catalogs built in code for unit tests."""

from __future__ import annotations

from retrieval.catalog import Catalog, Interaction, Item


def tiny_movies() -> Catalog:
    """Eight movies with genres, decades and tags; popularity from interactions."""
    rows = [
        ("1", "Toy Story (1995)", ["Animation", "Comedy", "Children"], "1990s", ["pixar", "funny"]),
        ("2", "Shrek (2001)", ["Animation", "Comedy", "Fantasy"], "2000s", ["funny", "fairy tale"]),
        ("3", "Up (2009)", ["Animation", "Adventure", "Drama"], "2000s", ["pixar", "sad"]),
        ("4", "Alien (1979)", ["Horror", "Sci-Fi"], "1970s", ["space", "creepy"]),
        ("5", "Heat (1995)", ["Action", "Crime", "Thriller"], "1990s", ["heist"]),
        ("6", "Airplane! (1980)", ["Comedy"], "1980s", ["parody", "funny"]),
        ("7", "The Shining (1980)", ["Horror"], "1980s", ["stephen king", "creepy"]),
        ("8", "Amelie (2001)", ["Comedy", "Romance"], "2000s", ["paris", "quirky"]),
    ]
    items = [
        Item(
            id=i,
            title=t,
            text=f"{t}. {' '.join(g)}",
            attributes={"genre": g, "decade": [d], "tag": tags},
            keywords=[*(x.lower() for x in g), *tags],
        )
        for i, t, g, d, tags in rows
    ]
    counts = {"1": 9, "2": 7, "3": 6, "4": 5, "5": 4, "6": 3, "7": 2, "8": 1}
    interactions = [
        Interaction(user=f"u{n}", item=item_id, rating=4.0) for item_id, c in counts.items() for n in range(c)
    ]
    return Catalog(name="tiny-movies", items=items, interactions=interactions)


def lead_reply(opening: str):
    """A scripted chat step for the reply prompt: `opening`, then on an ask turn a question naming the value
    the prompt asks about (the service replaces a question about anything else)."""
    import re

    def answer(request) -> str:
        asked = re.search(r"question, starting with \"Would you like\", about: (.+?) \(", request.messages[-1].content)
        return f"{opening} Would you like {asked.group(1)}?" if asked else opening

    return answer
