"""Build simulated-user cases from real data: MovieLens held-out users, ReDial seekers, LastFM target artists.

Run `python -m evals.sim_build --out evals/cases --n 60 --seed 0` to regenerate evals/cases/*.jsonl.
Every choice is seeded; personas are dealt round-robin from a seeded shuffle so each file mixes them.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
from collections import Counter, defaultdict
from pathlib import Path

from agent.state import Attr
from evals.sim_cases import PERSONAS, Need, Persona, SimCase, write_cases
from evals.simulators.leakage import redact
from retrieval.catalog import Catalog, Item
from retrieval.loaders import load_catalog

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
MOVIELENS = "data/movielens-latest-small"
LASTFM = "../shared/data/lastfm-unicorn/lastfm"
LIKED, TARGET_RATING, MAX_ACCEPTABLE, MIN_TAG_ITEMS = 4.0, 4.5, 20, 3


def attrs(item: Item, kinds: tuple[str, ...] = ("genre", "decade", "tag")) -> list[Attr]:
    """An item's attributes of the given types, in a stable order."""
    return [Attr(type=k, value=v) for k in kinds for v in item.attributes.get(k, [])]


def personas(n: int, rng: random.Random) -> list[Persona]:
    """n personas: a seeded shuffle of the archetypes, dealt round-robin."""
    order = list(PERSONAS)
    rng.shuffle(order)
    return [order[k % len(order)] for k in range(n)]


def _acceptable(catalog: Catalog, ids: list[str], target: str, must: list[Attr], must_not: list[Attr]) -> list[str]:
    """Other liked items that meet the must-haves and carry no must-not attribute."""
    out = []
    for item_id in ids:
        have = set(attrs(catalog.items[item_id]))
        if item_id != target and set(must) <= have and not (set(must_not) & have):
            out.append(item_id)
    return out[:MAX_ACCEPTABLE]


def _genre_means(catalog: Catalog, ratings: list) -> dict[str, float]:
    sums: dict[str, list[float]] = defaultdict(list)
    for r in ratings:
        for genre in catalog.items[r.item].attributes.get("genre", []):
            sums[genre].append(r.rating)
    return {g: sum(v) / len(v) for g, v in sums.items() if len(v) >= 3}


def movielens_case(catalog: Catalog, user: str, ratings: list, persona: Persona, rng: random.Random) -> SimCase | None:
    """The user's most recent highly rated movie is the held-out target; its genre (and a tag) are must-haves."""
    liked = sorted((r for r in ratings if r.rating >= TARGET_RATING), key=lambda r: (r.timestamp or 0, r.item))
    if not liked:
        return None
    target = catalog.items[liked[-1].item]
    genres = target.attributes.get("genre", [])
    if not genres:
        return None
    must = [Attr(type="genre", value=rng.choice(genres))]
    tags = [t for t in target.attributes.get("tag", []) if catalog.attribute_counts["tag"][t] >= MIN_TAG_ITEMS]
    if tags and rng.random() < 0.5:
        must.append(Attr(type="tag", value=rng.choice(tags)))
    means = _genre_means(catalog, ratings)
    disliked = sorted((m, g) for g, m in means.items() if m <= 3.0 and g not in genres)
    must_not = [Attr(type="genre", value=disliked[0][1])] if disliked else []
    good = [r.item for r in sorted(ratings, key=lambda r: -r.rating) if r.rating >= LIKED]
    soft_tags = [t for t in target.attributes.get("tag", []) if Attr(type="tag", value=t) not in must][:2]
    decade = target.attributes.get("decade", [""])[0]
    soft = f"Something {' or '.join(soft_tags)}." if soft_tags else (f"Ideally from the {decade}." if decade else "")
    need = Need(target_ids=[target.id], target_titles=[target.title], target_attributes=attrs(target), must_have=must,
                must_not=must_not, acceptable_ids=_acceptable(catalog, good, target.id, must, must_not),
                soft=redact(soft, [target.title])[0])
    return SimCase(id=f"ml-u{user}", source="movielens", catalog=MOVIELENS, persona=persona, need=need)


def build_movielens(folder: Path, *, n: int, seed: int) -> list[SimCase]:
    """Cases from a seeded sample of MovieLens users (their latest 4.5+ rating held out as the target)."""
    catalog = load_catalog(folder)
    by_user: dict[str, list] = defaultdict(list)
    for r in catalog.interactions:
        by_user[r.user].append(r)
    rng = random.Random(seed)
    users = sorted(by_user, key=int)
    rng.shuffle(users)
    cases = []
    for user, persona in zip(users, personas(len(users), rng)):
        case = movielens_case(catalog, user, by_user[user], persona, rng)
        if case is not None:
            cases.append(case)
        if len(cases) == n:
            break
    return cases


def _imdb_to_movielens(folder: Path) -> dict[str, str]:
    with (folder / "links.csv").open(encoding="utf-8", newline="") as handle:
        return {row["imdbId"]: row["movieId"] for row in csv.DictReader(handle)}


def _seeker_words(conv: dict, names: dict[str, str], hide: set[str]) -> str:
    """The seeker's opening messages (until the first suggestion), @ids spelled out, hidden ones blurred."""
    seeker, said = conv["initiatorWorkerId"], []
    for message in conv["messages"]:
        if message["senderWorkerId"] != seeker:
            if said and "@" in message["text"]:
                break
            continue
        text = re.sub(r"@(\d+)", lambda m: "a movie" if m.group(1) in hide else names.get(m.group(1), "a movie"),
                      message["text"])
        if len(text.split()) > 2:  # skip "hi", "yes", "ok"
            said.append(text.strip())
        if len(said) == 2:
            break
    return " ".join(said)[:240]


def redial_case(conv: dict, catalog: Catalog, ml_of: dict[str, str], persona: Persona) -> SimCase | None:
    """A ReDial seeker: the movies the recommender suggested that the seeker liked (new ones first) are the need."""
    questions = conv.get("initiatorQuestions") or {}
    mapped = [(rid, ml_of.get(rid)) for rid, q in questions.items()
              if isinstance(q, dict) and q.get("suggested") == 1 and q.get("liked") == 1]
    mapped = [(rid, mid, questions[rid].get("seen") != 1) for rid, mid in mapped if mid in catalog.items]
    if not mapped:
        return None
    entities = {e.lower() for m in conv["messages"] if m["senderWorkerId"] == conv["initiatorWorkerId"] for e in m["entity"]}

    def asked_for(item_id: str) -> list[str]:
        return [g for g in catalog.items[item_id].attributes.get("genre", []) if g.lower() in entities]

    # The target: the liked suggestion that fits what the seeker asked for best, one they had not seen first.
    mapped.sort(key=lambda t: (-len(asked_for(t[1])), not t[2]))
    target = catalog.items[mapped[0][1]]
    names = {k: " ".join(v.split()) for k, v in conv["movieMentions"].items()}
    soft = redact(_seeker_words(conv, names, {mapped[0][0]}), [target.title])[0]
    must = [Attr(type="genre", value=g) for g in asked_for(target.id)]
    need = Need(target_ids=[target.id], target_titles=[target.title], target_attributes=attrs(target),
                must_have=must, acceptable_ids=[mid for _r, mid, _new in mapped[1:]][:MAX_ACCEPTABLE], soft=soft)
    return SimCase(id=f"redial-{conv['conversationId']}", source="redial", catalog=MOVIELENS, persona=persona, need=need)


def build_redial(redial: Path, movielens: Path, *, n: int, seed: int) -> list[SimCase]:
    """Cases from ReDial seekers whose liked suggestions exist in MovieLens (matched by IMDb id)."""
    catalog = load_catalog(movielens)
    links = _imdb_to_movielens(movielens)
    info = json.loads((redial / "id2info.json").read_text(encoding="utf-8"))
    ml_of = {rid: links.get(str(v.get("imdb_id", ""))[2:]) for rid, v in info.items()}
    convs = [json.loads(line) for line in (redial / "valid_data.jsonl").read_text(encoding="utf-8").splitlines() if line]
    rng = random.Random(seed)
    rng.shuffle(convs)
    cases = []
    for conv, persona in zip(convs, personas(len(convs), rng)):
        case = redial_case(conv, catalog, {k: v for k, v in ml_of.items() if v}, persona)
        if case is not None and case.need.soft:
            cases.append(case)
        if len(cases) == n:
            break
    return cases


def lastfm_case(catalog: Catalog, user: str, target_id: str, others: list[str], train: list[str],
                persona: Persona, rng: random.Random) -> SimCase | None:
    """A LastFM test pair: the artist is the target, one or two of its tags are must-haves."""
    target = catalog.items[target_id]
    tags = target.attributes.get("tag", [])
    if not tags:
        return None
    must = [Attr(type="tag", value=t) for t in rng.sample(tags, min(len(tags), 1 + (rng.random() < 0.4)))]
    heard = Counter(t for i in train for t in catalog.items[i].attributes.get("tag", []))
    never = [t for t, _ in catalog.attribute_counts["tag"].most_common(12) if t not in heard and t not in tags]
    must_not = [Attr(type="tag", value=never[0])] if never else []
    taste = [t for t, _ in heard.most_common(4) if Attr(type="tag", value=t) not in must][:2]
    soft = f"I mostly listen to {' and '.join(taste)}." if taste else ""
    need = Need(target_ids=[target.id], target_titles=[target.title], target_attributes=attrs(target, ("tag",)),
                must_have=must, must_not=must_not, acceptable_ids=_acceptable(catalog, others, target.id, must, must_not),
                soft=soft)
    return SimCase(id=f"lastfm-u{user}-{target_id}", source="lastfm", catalog=LASTFM, persona=persona, need=need)


def build_lastfm(folder: Path, *, n: int, seed: int) -> list[SimCase]:
    """Cases from a seeded sample of LastFM test (user, artist) pairs; taste from the user's train artists."""
    catalog = load_catalog(folder)
    test: dict[str, list[str]] = defaultdict(list)
    train: dict[str, list[str]] = defaultdict(list)
    for r in catalog.splits["test"]:
        test[r.user].append(r.item)
    for r in catalog.interactions:
        train[r.user].append(r.item)
    rng = random.Random(seed)
    pairs = sorted((u, i) for u, items in test.items() for i in items)
    rng.shuffle(pairs)
    cases, users = [], set()
    for (user, item), persona in zip(pairs, personas(len(pairs), rng)):
        if user in users:
            continue
        case = lastfm_case(catalog, user, item, test[user], train[user], persona, rng)
        if case is not None:
            cases.append(case)
            users.add(user)
        if len(cases) == n:
            break
    return cases


def main(argv: list[str] | None = None) -> None:
    """Write movielens.jsonl, redial.jsonl and lastfm.jsonl."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "evals" / "cases")
    parser.add_argument("--n", type=int, default=60, help="cases per file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    built = {
        "movielens": build_movielens(REPO / MOVIELENS, n=args.n, seed=args.seed),
        "redial": build_redial(SHARED / "redial", REPO / MOVIELENS, n=args.n, seed=args.seed),
        "lastfm": build_lastfm(REPO / LASTFM, n=args.n, seed=args.seed),
    }
    for name, cases in built.items():
        print(f"{write_cases(cases, args.out / f'{name}.jsonl')}: {len(cases)} cases")


if __name__ == "__main__":
    main()
