"""The ReDial candidate catalog: the 6,583 movies of iEvaLM's id2info.json, with MovieLens ratings as interactions."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from retrieval.catalog import Catalog, Interaction, Item

NAME = "redial-id2info"
PEOPLE = ("director", "writer", "star")
_YEAR = re.compile(r"\((\d{4})\)\s*$")


def load_id2info(path: Path) -> dict[str, dict]:
    return json.loads(Path(path).read_text("utf-8"))


def build_item(item_id: str, info: dict) -> Item:
    """An Item shaped like the MovieLens loader's: title-case genres, people, year and decade, a plot text."""
    title = info["name"].strip()
    attributes: dict[str, list[str]] = {}
    genres = [g.strip().title() for g in info.get("genre") or [] if g.strip()]
    if genres:
        attributes["genre"] = genres
    for kind in PEOPLE:
        people = [p.strip() for p in info.get(kind) or [] if p and p.strip()]
        if people:
            attributes[kind] = list(dict.fromkeys(people))
    match = _YEAR.search(title)
    if match:
        year = int(match.group(1))
        attributes["year"], attributes["decade"] = [str(year)], [f"{year // 10 * 10}s"]
    return Item(id=item_id, title=title, text=describe(title, info), attributes=attributes,
                keywords=[g.lower() for g in genres])


def describe(title: str, info: dict) -> str:
    kinds = ", ".join(g.lower() for g in info.get("genre") or [])
    text = f"{title} is a {kinds + ' ' if kinds else ''}movie"
    if info.get("director"):
        text += f" directed by {', '.join(info['director'][:2])}"
    if info.get("star"):
        text += f", starring {', '.join(info['star'][:3])}"
    plot = (info.get("plot") or "").strip()
    return f"{text}. {plot}" if plot else text + "."


def movielens_interactions(movielens: Path, imdb_to_item: dict[str, str]) -> list[Interaction]:
    """MovieLens ratings of the movies id2info also has (links.csv imdbId <-> id2info imdb_id): not ReDial data."""
    with open(movielens / "links.csv", newline="", encoding="utf-8") as f:
        movie_to_item = {row["movieId"]: imdb_to_item.get(f"tt{int(row['imdbId']):07d}")
                         for row in csv.DictReader(f) if row["imdbId"].strip()}
    out = []
    with open(movielens / "ratings.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            item = movie_to_item.get(row["movieId"])
            if item is not None:
                out.append(Interaction(user=row["userId"], item=item, rating=float(row["rating"]),
                                       timestamp=int(row["timestamp"])))
    return out


def load_redial_catalog(id2info: Path, *, movielens: Path | None) -> Catalog:
    """The candidate set of the protocol; with `movielens`, its ratings mapped through IMDb ids."""
    infos = load_id2info(id2info)
    items = [build_item(item_id, info) for item_id, info in infos.items()]
    interactions: list[Interaction] = []
    if movielens is not None:
        imdb = {info["imdb_id"]: item_id for item_id, info in infos.items() if info.get("imdb_id")}
        interactions = movielens_interactions(movielens, imdb)
    return Catalog(name=NAME, items=items, interactions=interactions, source=str(id2info))


def title_index(catalog: Catalog) -> dict[str, str]:
    """'Title (Year)' as ReDial writes a label (spaces collapsed) -> item id."""
    return {" ".join(item.title.split()): item_id for item_id, item in catalog.items.items()}
