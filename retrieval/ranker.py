"""Classical ranker: EASE item-item model trained on interactions, with attribute boosts and a popularity
fallback. It plays the role of SCPR's factorisation machine in the loop: personal scores for known
users (or any given history), raised by accepted attributes and lowered by rejected ones.

EASE (Steck, 2019) is a closed form: B = I - P / diag(P) with P = (X'X + l2 I)^-1, diag(B) = 0; a user's
score for item j is their history row times column j of B. We keep the `neighbors` largest weights of
each column (a sparse B), which is what gets saved next to the catalog fingerprint.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from retrieval.catalog import Catalog, Interaction
from retrieval.publish import IndexRefused, publish, read_manifest, verified, write_file

FORMAT_VERSION = 2  # 2: a manifest naming a versioned, checksummed .npz (issue 17)


class RankerError(RuntimeError):
    """The ranker cannot be trained or loaded; the message says why."""


@dataclass(frozen=True)
class RankerConfig:
    """Training and scoring knobs (the defaults were chosen on LastFM's validation split)."""

    l2: float = 200.0
    neighbors: int = 200
    min_rating: float | None = None
    max_items: int = 15_000
    accept_boost: float = 1.0
    reject_penalty: float = 2.0


@dataclass(frozen=True)
class RankedItem:
    """A candidate with its final score and the parts it is made of."""

    id: str
    score: float
    base: float
    source: str  # "personal" or "popularity"
    accepted: tuple[str, ...] = field(default_factory=tuple)
    rejected: tuple[str, ...] = field(default_factory=tuple)


class Ranker:
    """Scores items for a user (or a history) with EASE, falling back to popularity."""

    def __init__(self, *, item_ids: list[str], weights: sp.csc_matrix, popularity: np.ndarray,
                 users: dict[str, np.ndarray], fingerprint: str, config: RankerConfig,
                 meta: dict | None = None) -> None:
        self.item_ids = item_ids
        self.row_of = {item_id: row for row, item_id in enumerate(item_ids)}
        self.weights = weights.tocsr()
        self.popularity = popularity.astype(np.float32)
        self._pop_norm = np.log1p(self.popularity) / max(math.log1p(float(self.popularity.max(initial=0.0))), 1e-9)
        self.users = users
        self.fingerprint = fingerprint
        self.config = config
        self.meta = meta or {}
        self._attribute_rows: dict[str, np.ndarray] = {}

    # -- training ------------------------------------------------------------------------------------

    @classmethod
    def train(cls, catalog: Catalog, *, interactions: Sequence[Interaction] | None = None,
              config: RankerConfig | None = None) -> Ranker:
        """Fit on `interactions` (default: the train split if there is one, else all interactions)."""
        config = config or RankerConfig()
        if interactions is None:
            interactions = catalog.splits.get("train", catalog.interactions)
        started = time.perf_counter()
        item_ids = list(catalog.items)
        row_of = {item_id: row for row, item_id in enumerate(item_ids)}
        pairs = {(i.user, row_of[i.item]) for i in interactions
                 if i.item in row_of and (config.min_rating is None or (i.rating or 0.0) >= config.min_rating)}
        if not pairs:
            raise RankerError(f"catalog {catalog.name!r} has no usable interactions to train on")
        users: dict[str, list[int]] = {}
        for user, row in sorted(pairs):
            users.setdefault(user, []).append(row)
        counts = Counter(row for _user, row in pairs)
        popularity = np.zeros(len(item_ids), dtype=np.float32)
        popularity[list(counts)] = list(counts.values())
        modelled = np.asarray(sorted(counts, key=lambda r: (-counts[r], r))[: config.max_items], dtype=np.int64)
        weights = _ease(users, modelled, len(item_ids), l2=config.l2, neighbors=config.neighbors)
        meta = {"trained_on": len(pairs), "users": len(users), "modelled_items": len(modelled),
                "train_seconds": round(time.perf_counter() - started, 2)}
        return cls(item_ids=item_ids, weights=weights, popularity=popularity,
                   users={u: np.asarray(r, dtype=np.int64) for u, r in users.items()},
                   fingerprint=catalog.fingerprint(), config=config, meta=meta)

    # -- scoring -------------------------------------------------------------------------------------

    def history_rows(self, *, user_id: str | None = None, history_ids: Iterable[str] = ()) -> np.ndarray:
        """Rows of a known user's training items plus any extra history ids."""
        rows = set(self.users.get(user_id, np.zeros(0, dtype=np.int64)).tolist()) if user_id else set()
        rows |= {self.row_of[i] for i in history_ids if i in self.row_of}
        return np.asarray(sorted(rows), dtype=np.int64)

    def personal_scores(self, history: np.ndarray, *, weights: np.ndarray | None = None) -> np.ndarray:
        """EASE scores of every item for a history (rows, optionally weighted); zeros for an empty history."""
        if len(history) == 0:
            return np.zeros(len(self.item_ids), dtype=np.float32)
        if weights is None:
            return np.asarray(self.weights[history].sum(axis=0), dtype=np.float32).ravel()
        return np.asarray(self.weights[history].T @ np.asarray(weights, dtype=np.float32), dtype=np.float32).ravel()

    def base_scores(self, history: np.ndarray) -> tuple[np.ndarray, str]:
        """Personal scores scaled to [0, 1] with popularity as a tie-break, or popularity alone."""
        personal = self.personal_scores(history)
        top = float(personal.max(initial=0.0))
        if top <= 0:
            return self._pop_norm.copy(), "popularity"
        return np.maximum(personal, 0.0) / top + 1e-3 * self._pop_norm, "personal"

    def rank(
        self,
        catalog: Catalog,
        candidate_ids: Sequence[str] | None = None,
        *,
        user_id: str | None = None,
        history_ids: Iterable[str] = (),
        accepted: Sequence[str] = (),
        rejected: Sequence[str] = (),
        k: int | None = None,
        exclude_seen: bool = True,
    ) -> list[RankedItem]:
        """Order candidates (default: every item) for a user; accepted attributes raise, rejected lower."""
        history = self.history_rows(user_id=user_id, history_ids=history_ids)
        base, source = self.base_scores(history)
        if candidate_ids is None:
            rows = np.arange(len(self.item_ids))
        else:
            rows = np.asarray([self.row_of[i] for i in dict.fromkeys(candidate_ids) if i in self.row_of], dtype=np.int64)
        if exclude_seen and len(history):
            rows = np.setdiff1d(rows, history, assume_unique=True) if candidate_ids is None else rows[~np.isin(rows, history)]
        score = base[rows].astype(np.float64)
        hits_acc = self._attribute_hits(catalog, accepted, rows)
        hits_rej = self._attribute_hits(catalog, rejected, rows)
        if accepted:
            score += self.config.accept_boost * hits_acc.sum(axis=0) / len(accepted)
        if rejected:
            score -= self.config.reject_penalty * (hits_rej.sum(axis=0) > 0)
        order = np.lexsort((rows, -score))
        if k is not None:
            order = order[:k]
        return [
            RankedItem(
                id=self.item_ids[rows[o]], score=float(score[o]), base=float(base[rows[o]]), source=source,
                accepted=tuple(a for n, a in enumerate(accepted) if hits_acc[n, o]),
                rejected=tuple(r for n, r in enumerate(rejected) if hits_rej[n, o]),
            )
            for o in order
        ]

    def _attribute_hits(self, catalog: Catalog, values: Sequence[str], rows: np.ndarray) -> np.ndarray:
        """A (len(values), len(rows)) boolean matrix: does candidate row carry the value?"""
        out = np.zeros((len(values), len(rows)), dtype=bool)
        for n, value in enumerate(values):
            carriers = self._attribute_rows.get(value)
            if carriers is None:
                carriers = np.asarray([self.row_of[i] for i, item in catalog.items.items() if item.has(value)],
                                      dtype=np.int64)
                self._attribute_rows[value] = carriers
            out[n] = np.isin(rows, carriers)
        return out

    def top_for_user(self, *, user_id: str | None = None, history_ids: Iterable[str] = (), k: int = 10,
                     exclude_ids: Iterable[str] = ()) -> list[str]:
        """The k best item ids for a user, without attributes (used by evaluation)."""
        history = self.history_rows(user_id=user_id, history_ids=history_ids)
        base, _source = self.base_scores(history)
        blocked = np.concatenate([history, [self.row_of[i] for i in exclude_ids if i in self.row_of]]).astype(np.int64)
        base = base.copy()
        base[blocked] = -np.inf
        top = np.argpartition(-base, k)[:k] if len(base) > k else np.arange(len(base))
        top = top[np.lexsort((top, -base[top]))]
        return [self.item_ids[t] for t in top]

    # -- persistence ---------------------------------------------------------------------------------

    def save(self, path: Path) -> Path:
        """Publish the weights, popularity and user histories (`<stem>-<sha>.npz`) under a manifest
        (`<stem>.json`: fingerprint, config, the data file's checksum); returns the manifest's path."""
        path = Path(path)
        user_ids = sorted(self.users)
        weights = self.weights.tocsr()
        arrays = {
            "item_ids": np.asarray(self.item_ids, dtype=str), "popularity": self.popularity,
            "w_data": weights.data, "w_indices": weights.indices, "w_indptr": weights.indptr,
            "user_ids": np.asarray(user_ids, dtype=str),
            "user_lengths": np.asarray([len(self.users[u]) for u in user_ids], dtype=np.int64),
            "user_rows": np.concatenate([self.users[u] for u in user_ids]) if user_ids else np.zeros(0, np.int64),
        }
        entry = write_file(path.parent, path.stem, ".npz", lambda tmp: np.savez(tmp, **arrays))
        info = {"format": FORMAT_VERSION, "fingerprint": self.fingerprint, "config": asdict(self.config), **self.meta,
                "files": {"weights": entry}}
        publish(path.parent, path.with_suffix(".json").name, info)
        return path.with_suffix(".json")

    @classmethod
    def load(cls, path: Path, *, fingerprint: str | None = None) -> Ranker:
        """Reopen a saved ranker (its .npz or .json path); refuses a damaged one or one trained for
        another version of the catalog."""
        path = Path(path)
        try:
            info = read_manifest(path.parent, path.with_suffix(".json").name)
            if info is None:
                raise RankerError(f"no trained ranker at {path}; run `concierge train-ranker DATASET`")
            if info.get("format") != FORMAT_VERSION:
                raise RankerError(f"{path}: ranker format {info.get('format')} != {FORMAT_VERSION}; retrain it")
            if fingerprint is not None and info["fingerprint"] != fingerprint:
                raise RankerError(
                    f"{path} was trained for catalog {info['fingerprint']}, not {fingerprint}; retrain it")
            data_file = verified(path.parent, info["files"]["weights"])
        except IndexRefused as exc:
            raise RankerError(f"{exc} (retrain it)") from None
        with np.load(data_file, allow_pickle=False) as data:
            item_ids = data["item_ids"].tolist()
            n = len(item_ids)
            weights = sp.csr_matrix((data["w_data"], data["w_indices"], data["w_indptr"]), shape=(n, n))
            bounds = np.concatenate([[0], np.cumsum(data["user_lengths"])])
            rows = data["user_rows"]
            users = {u: rows[bounds[j] : bounds[j + 1]] for j, u in enumerate(data["user_ids"].tolist())}
            popularity = data["popularity"]
        config = RankerConfig(**info["config"])
        meta = {key: value for key, value in info.items() if key not in ("format", "fingerprint", "config", "files")}
        return cls(item_ids=item_ids, weights=weights, popularity=popularity, users=users,
                   fingerprint=info["fingerprint"], config=config, meta=meta)


def _ease(users: dict[str, list[int]], modelled: np.ndarray, n_items: int, *, l2: float, neighbors: int) -> sp.csc_matrix:
    """EASE weights over the `modelled` items, pruned to `neighbors` per column, as an n_items square."""
    position = np.full(n_items, -1, dtype=np.int64)
    position[modelled] = np.arange(len(modelled))
    user_rows = [position[r] for r in users.values()]
    indptr = np.cumsum([0, *(int((r >= 0).sum()) for r in user_rows)])
    indices = np.concatenate([r[r >= 0] for r in user_rows]) if user_rows else np.zeros(0, np.int64)
    x = sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=(len(user_rows), len(modelled)))
    gram = (x.T @ x).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += l2
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)
    b[np.diag_indices_from(b)] = 0.0
    del p, gram
    if neighbors and neighbors < len(modelled):
        cut = np.argpartition(-b, neighbors - 1, axis=0)[:neighbors]
        cols = np.broadcast_to(np.arange(len(modelled)), cut.shape)
        vals = b[cut, cols]
        keep = vals > 0
        rows_, cols_, vals = cut[keep], cols[keep], vals[keep]
    else:
        rows_, cols_ = np.nonzero(b > 0)
        vals = b[rows_, cols_]
    return sp.csc_matrix((vals.astype(np.float32), (modelled[rows_], modelled[cols_])), shape=(n_items, n_items))
