"""reports/retrieval.md from the JSON document of `concierge eval retrieval`: MovieLens "stated" (the
acceptance bars) and "history" cold start, then the LastFM ranker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MODES = ("keyword", "vector", "hybrid", "popularity")


def acceptance(result: dict[str, Any]) -> dict[str, bool]:
    """The issue's quality bars, computed from the test-user numbers of the "stated" protocol."""
    ml, lf = result["movielens"], result["lastfm"]
    best_single = max(ml["keyword"]["recall@20"], ml["vector"]["recall@20"])
    return {
        "hybrid_recall_at_least_best_single": ml["hybrid"]["recall@20"] >= best_single,
        "all_three_above_popularity": _beat_popularity(ml),
        "ranker_ndcg_at_least_1_5x_popularity": lf["ranker"]["ndcg@10"] >= 1.5 * lf["popularity"]["ndcg@10"],
    }


def _beat_popularity(rows: dict[str, Any]) -> bool:
    """Clearly above: each retriever's paired per-user Recall@20 gain over popularity has a 95% CI above 0."""
    def clear(m: str) -> bool:
        gain = rows[m].get("recall@20_gain_over_popularity_ci95")
        return gain[0] > 0 if gain else rows[m]["recall@20"] > rows["popularity"]["recall@20"]
    return all(clear(m) for m in ("keyword", "vector", "hybrid"))


def _ci(pair: Any) -> str:
    return f"[{pair[0]:.4f}, {pair[1]:.4f}]" if pair else ""


def _stated_text(ml: dict[str, Any]) -> str:
    return (
        "Users of ml-latest-small with at least 10 movies rated 4 or more. Each user's liked movies are cut in "
        "time at the middle one; the *targets* are the movies they liked after the cut, and movies rated before "
        "the cut are excluded from the results. The *keywords* are drawn from the held-out liked movies (the "
        "targets) as a whole, as a cold-start user describing what they want now: up to 3 tags the user wrote on "
        "target movies (most used first), filled up with the catalog tags most specific to the target set "
        "(TF-IDF, document frequency from the catalog), counting only tags shared by at least 2 targets so that "
        "no keyword points at a single movie, plus the 2 genres most over-represented among the targets (on at "
        "least 2 of them). The user's own tag applications on their targets are removed from the catalog, so a "
        "target is never found through the tag application a keyword came from (other users' applications of "
        "the same tag stay). This measures whether a retriever finds movies matching a stated want, not whether "
        "it predicts what a user watches next (that is the history protocol below). Popularity counts ratings "
        "of users who are not evaluated. Users are split at random into a validation half "
        f"({ml['users']['valid']} users), on which every weight was picked, and a test half "
        f"({ml['users']['test']} users) reported here. On average {ml['keywords_per_user']:.1f} keywords and "
        f"{ml['targets_per_user']:.1f} targets per user."
    )


def _history_text(ml: dict[str, Any]) -> str:
    return (
        "The same users, time cut, targets, exclusions, cleaned catalog and validation/test split as above; only "
        "the keywords differ. They now come from the user's earlier history: up to 3 tags the user wrote before "
        "the cut on movies that are not targets (filled up with the most specific catalog tags of their early "
        "liked movies) plus their 2 most over-represented genres, so they describe past taste rather than the "
        "wanted movies. Weights are tuned again on this protocol's validation users. On average "
        f"{ml['keywords_per_user']:.1f} keywords and {ml['targets_per_user']:.1f} targets per user."
    )


def _why_history(rows: dict[str, Any]) -> str:
    if _beat_popularity(rows):
        return "All three retrievers beat popularity on this harder protocol too."
    return ("Popularity wins here because a user's later liked movies are mostly widely seen films that their "
            "earlier keywords do not describe: the keywords carry past taste, not what comes next, so the most "
            "rated films overlap the targets more than the films the keywords point at.")


def _movielens_lines(rows: dict[str, Any], ml: dict[str, Any]) -> list[str]:
    """The test table, tuned weights, no-prior and validation tables, and notes of one protocol."""
    lines = ["", "| method | Recall@20 (95% bootstrap CI) | gain over popularity (paired 95% CI) | NDCG@10 |",
             "|---|---|---|---|"]
    for mode in MODES:
        row = rows[mode]
        gain = row.get("recall@20_gain_over_popularity_ci95")
        gain_text = f"{row['recall@20'] - rows['popularity']['recall@20']:+.4f} {_ci(gain)}" if gain else ""
        lines.append(f"| {mode} | {row['recall@20']:.4f} {_ci(row.get('recall@20_ci95'))} | {gain_text} | "
                     f"{row['ndcg@10']:.4f} |")
    fusion = ml["fusion"]
    lines += [
        "",
        f"Tuned on validation users: keyword popularity prior {fusion['keyword_prior']}, vector prior "
        f"{fusion['vector_prior']}, fusion weights keyword {fusion['keyword_weight']} / vector "
        f"{fusion['vector_weight']}, RRF k {fusion['rrf_k']}, fused depth {fusion['depth']}. Without the "
        "popularity prior (pure text relevance) the same retrievers score:",
        "", "| method | Recall@20 | NDCG@10 |", "|---|---|---|",
    ]
    for mode in ("keyword", "vector", "hybrid"):
        row = ml["test"][f"{mode}_pure"]
        lines.append(f"| {mode}, no prior | {row['recall@20']:.4f} | {row['ndcg@10']:.4f} |")
    lines += ["", "Validation users (where the weights were chosen):", "", "| method | Recall@20 | NDCG@10 |",
              "|---|---|---|"]
    for mode in MODES:
        row = ml["valid"][mode]
        lines.append(f"| {mode} | {row['recall@20']:.4f} | {row['ndcg@10']:.4f} |")
    return lines + _notes(ml)


def _notes(ml: dict[str, Any]) -> list[str]:
    """Own-tag users, live-path agreement, vector store build and example users of one protocol."""
    own, build = ml["test_own_taggers"], ml["vector_build"]
    if build.get("skipped"):
        store = (f"Vector store: reopened as it was (fingerprint {build.get('fingerprint')}, nothing embedded; "
                 "both protocols search the same cleaned catalog).")
    else:
        store = f"Vector store build: {build['embedded']} items embedded in {build['seconds']} s."
    return [
        "",
        f"Test users whose keywords include tags they wrote themselves ({own['hybrid']['users']} users), "
        "Recall@20: " + ", ".join(f"{m} {own[m]['recall@20']:.4f}" for m in MODES) + ".",
        "",
        "The live `HybridSearcher.search` path agrees with the cached-pool scoring used for tuning on "
        + ", ".join(f"{m} {ml['live_agreement'][m]:.1%}" for m in ml["live_agreement"]) + f" of test users. {store}",
        "",
        "Example test users: " + "; ".join(f"user {e['user']}: {', '.join(e['keywords'])} ({e['targets']} targets)"
                                           for e in ml["examples"]) + ".",
    ]


def write_retrieval_report(result: dict[str, Any], path: Path) -> Path:
    """Write the Markdown report and return its path."""
    stated, history = result["details"]["movielens"], result["details"]["movielens_history"]
    lines = [
        "# Retrieval quality",
        "",
        f"Run {result['date']} with `{result['command']}` (embedder `{result['embedder']}`, seed {stated['seed']}). "
        "Every number below is measured by that command; rerun it to reproduce.",
        "",
        "## MovieLens cold start: stated wants (KALM4Rec protocol)",
        "",
        _stated_text(stated),
        *_movielens_lines(result["movielens"], stated),
        "",
        "## MovieLens cold start: from earlier history",
        "",
        _history_text(history),
        *_movielens_lines(result["movielens_history"], history),
        "",
        _why_history(result["movielens_history"]),
        "",
        *_lastfm_lines(result),
        "",
        "## Acceptance",
        "",
        "Computed on the stated-wants protocol:",
        "",
    ]
    lines += [f"- {name.replace('_', ' ')}: {'yes' if ok else 'NO'}" for name, ok in acceptance(result).items()]
    lines += ["", "Not a bar: on the history protocol all three retrievers are above popularity: "
              + ("yes." if _beat_popularity(result["movielens_history"]) else "NO."), ""]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _lastfm_lines(result: dict[str, Any]) -> list[str]:
    """The LastFM ranker section."""
    lf = result["details"]["lastfm"]
    lines = [
        "## LastFM ranker (UNICORN split)",
        "",
        f"EASE trained on `review_dict_train`, its L2 chosen on `review_dict_valid`, scored on "
        f"`review_dict_test`: {lf['users']} users, {lf['pairs']} test pairs; items a user has in train or valid "
        "are excluded. Popularity is the train interaction count.",
        "",
        "| method | Recall@10 (NDCG@10 95% CI) | NDCG@10 |",
        "|---|---|---|",
    ]
    for name in ("ranker", "popularity"):
        row = result["lastfm"][name]
        lines.append(f"| {name} | {row['recall@10']:.4f} {_ci(row.get('ndcg@10_ci95'))} | {row['ndcg@10']:.4f} |")
    ratio = result["lastfm"]["ranker"]["ndcg@10"] / max(result["lastfm"]["popularity"]["ndcg@10"], 1e-12)
    lines += [
        "",
        f"Ranker NDCG@10 is {ratio:.2f}x popularity. L2 grid (validation NDCG@10): "
        + ", ".join(f"{g['l2']:g}: {g['valid_ndcg@10']:.4f}" for g in lf["l2_grid"]) + f"; chosen {lf['l2']:g}.",
    ]
    return lines
