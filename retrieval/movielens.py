"""MovieLens ml-latest-small loader: movies.csv, tags.csv (optional) and ratings.csv."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from retrieval.catalog import Catalog, CatalogError, Interaction, Item
from retrieval.catalog_io import build_interactions, iter_csv_rows, parse_rating, parse_timestamp

NAME = "movielens-latest-small"
NO_GENRES = "(no genres listed)"
MAX_TAGS_IN_TEXT = 10
Movies = dict[str, tuple[int, str, list[str]]]  # movieId -> (line, title, genres)
_YEAR = re.compile(r"\((\d{4})(?:\s*[-–]\s*\d{4})?\)\s*$")


def load_movielens(folder: Path) -> Catalog:
    """Load an ml-latest-small folder; raises CatalogError naming the file and line of any bad row."""
    movies_file = folder / "movies.csv"
    movies = _read_movies(movies_file)
    tags_file = folder / "tags.csv"
    tags = _read_tags(tags_file, movies) if tags_file.is_file() else {}
    items = [
        _build_item(movies_file, line, movie_id, title, genres, tags.get(movie_id, []))
        for movie_id, (line, title, genres) in movies.items()
    ]
    ratings = _read_ratings(folder / "ratings.csv", movies)
    return Catalog(name=NAME, items=items, interactions=ratings, source=str(folder))


def _rows(path: Path, header: list[str]) -> Iterator[tuple[int, list[str]]]:
    """CSV rows after checking the header and the field count of each row."""
    rows = iter_csv_rows(path)
    first = next(rows, None)
    if first is None:
        raise CatalogError(str(path), None, "file is empty (expected a header line)")
    if first[1] != header:
        raise CatalogError(str(path), first[0], f"header must be {','.join(header)}, got {','.join(first[1])}")
    for line, row in rows:
        if len(row) != len(header):
            raise CatalogError(str(path), line, f"row has {len(row)} fields, header has {len(header)}")
        yield line, row


def _read_movies(path: Path) -> Movies:
    movies: Movies = {}
    for line, (movie_id, title, genres) in _rows(path, ["movieId", "title", "genres"]):
        movie_id = movie_id.strip()
        if not movie_id:
            raise CatalogError(str(path), line, "movieId is blank")
        if movie_id in movies:
            raise CatalogError(str(path), line, f"duplicate movieId {movie_id!r} (first on line {movies[movie_id][0]})")
        movies[movie_id] = (line, title, [g for g in genres.split("|") if g and g != NO_GENRES])
    if not movies:
        raise CatalogError(str(path), None, "no items")
    return movies


def _read_tags(path: Path, movies: Movies) -> dict[str, list[str]]:
    tags: dict[str, set[str]] = {}
    for line, (_user, movie_id, tag, _timestamp) in _rows(path, ["userId", "movieId", "tag", "timestamp"]):
        if movie_id not in movies:
            raise CatalogError(str(path), line, f"tag names unknown movieId {movie_id!r}")
        tag = tag.strip().lower()
        if tag:
            tags.setdefault(movie_id, set()).add(tag)
    return {movie_id: sorted(values) for movie_id, values in tags.items()}


def _read_ratings(path: Path, movies: Movies) -> list[Interaction]:
    rows: list[dict[str, object]] = []
    lines: list[int] = []
    for line, (user, movie_id, rating, timestamp) in _rows(path, ["userId", "movieId", "rating", "timestamp"]):
        if not user:
            raise CatalogError(str(path), line, "userId is blank")
        if movie_id not in movies:
            raise CatalogError(str(path), line, f"rating names unknown movieId {movie_id!r}")
        rating_value, time_value = parse_rating(path, line, rating), parse_timestamp(path, line, timestamp)
        rows.append({"user": user, "item": movie_id, "rating": rating_value, "timestamp": time_value})
        lines.append(line)
    return build_interactions(path, rows, lines)


def _build_item(path: Path, line: int, movie_id: str, title: str, genres: list[str], tags: list[str]) -> Item:
    attributes: dict[str, list[str]] = {}
    if genres:
        attributes["genre"] = genres
    match = _YEAR.search(title)
    if match:
        year = int(match.group(1))
        attributes["year"] = [str(year)]
        attributes["decade"] = [f"{year // 10 * 10}s"]
    if tags:
        attributes["tag"] = tags
    keywords = list(dict.fromkeys([g.lower() for g in genres] + tags))
    text = _describe(title, genres, tags)
    try:
        return Item(id=movie_id, title=title, text=text, attributes=attributes, keywords=keywords)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise CatalogError(str(path), line, f"invalid {error['loc'][0]}: {error['msg']}") from None


def _describe(title: str, genres: list[str], tags: list[str]) -> str:
    """A short sentence for embeddings and the LLM: title, genres and a few tags."""
    kinds = ", ".join(g.lower() for g in genres)
    text = f"{title.strip()} is {'an' if kinds[:1] in set('aeiou') else 'a'} {kinds + ' ' if kinds else ''}movie"
    if tags:
        shown = tags[:MAX_TAGS_IN_TEXT]
        more = f" and {len(tags) - len(shown)} more" if len(tags) > len(shown) else ""
        text += f", tagged {', '.join(shown)}{more}"
    return text + "."
