"""reports/retrieval.md from the JSON document of `concierge eval retrieval`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MODES = ("keyword", "vector", "hybrid", "popularity")


def acceptance(result: dict[str, Any]) -> dict[str, bool]:
    """The issue's quality bars, computed from the test-user numbers."""
    ml, lf = result["movielens"], result["lastfm"]
    best_single = max(ml["keyword"]["recall@20"], ml["vector"]["recall@20"])
    return {
        "hybrid_recall_at_least_best_single": ml["hybrid"]["recall@20"] >= best_single,
        "all_three_above_popularity": all(ml[m]["recall@20"] > ml["popularity"]["recall@20"]
                                          for m in ("keyword", "vector", "hybrid")),
        "ranker_ndcg_at_least_1_5x_popularity": lf["ranker"]["ndcg@10"] >= 1.5 * lf["popularity"]["ndcg@10"],
    }


def _ci(pair: Any) -> str:
    return f"[{pair[0]:.4f}, {pair[1]:.4f}]" if pair else ""


def write_retrieval_report(result: dict[str, Any], path: Path) -> Path:
    """Write the Markdown report and return its path."""
    ml, lf = result["details"]["movielens"], result["details"]["lastfm"]
    fusion = ml["fusion"]
    checks = acceptance(result)
    lines = [
        "# Retrieval quality",
        "",
        f"Run {result['date']} with `{result['command']}` (embedder `{result['embedder']}`, seed {ml['seed']}). "
        "Every number below is measured by that command; rerun it to reproduce.",
        "",
        "## MovieLens cold start (KALM4Rec protocol)",
        "",
        "Users of ml-latest-small with at least 10 movies rated 4 or more. Each user's liked movies are cut in "
        "time at the middle one: the *keywords* are up to 3 tags the user wrote before the cut on movies that "
        "are not targets (filled up with the most specific catalog tags of their early liked movies) plus their "
        "2 most over-represented genres; the *targets* are the movies they liked after the cut; movies rated "
        "before the cut are excluded from the results. Tags that an evaluated user put on one of their own "
        "targets are removed from the catalog, so no target is found through the user's own later tag. "
        "Popularity counts ratings of users who are not evaluated. Users are split at random into a "
        f"validation half ({ml['users']['valid']} users), on which every weight was picked, and a test half "
        f"({ml['users']['test']} users) reported here. On average {ml['keywords_per_user']:.1f} keywords and "
        f"{ml['targets_per_user']:.1f} targets per user.",
        "",
        "| method | Recall@20 (95% bootstrap CI) | NDCG@10 |",
        "|---|---|---|",
    ]
    for mode in MODES:
        row = result["movielens"][mode]
        lines.append(f"| {mode} | {row['recall@20']:.4f} {_ci(row.get('recall@20_ci95'))} | {row['ndcg@10']:.4f} |")
    lines += [
        "",
        f"Tuned on validation users: keyword popularity prior {fusion['keyword_prior']}, vector prior "
        f"{fusion['vector_prior']}, fusion weights keyword {fusion['keyword_weight']} / vector "
        f"{fusion['vector_weight']}, RRF k {fusion['rrf_k']}, fused depth {fusion['depth']}. Without the "
        "popularity prior (pure text relevance) the same retrievers score:",
        "",
        "| method | Recall@20 | NDCG@10 |",
        "|---|---|---|",
    ]
    for mode in ("keyword", "vector", "hybrid"):
        row = ml["test"][f"{mode}_pure"]
        lines.append(f"| {mode}, no prior | {row['recall@20']:.4f} | {row['ndcg@10']:.4f} |")
    lines += ["", "Validation users (where the weights were chosen):", "", "| method | Recall@20 | NDCG@10 |",
              "|---|---|---|"]
    for mode in MODES:
        row = ml["valid"][mode]
        lines.append(f"| {mode} | {row['recall@20']:.4f} | {row['ndcg@10']:.4f} |")
    own = ml["test_own_taggers"]
    lines += [
        "",
        f"Test users whose keywords include tags they wrote themselves ({own['hybrid']['users']} users), "
        "Recall@20: " + ", ".join(f"{m} {own[m]['recall@20']:.4f}" for m in MODES) + ".",
        "",
        "The live `HybridSearcher.search` path agrees with the cached-pool scoring used for tuning on "
        + ", ".join(f"{m} {ml['live_agreement'][m]:.1%}" for m in ml["live_agreement"])
        + f" of test users. Vector store build: {ml['vector_build']['embedded']} items embedded in "
        f"{ml['vector_build']['seconds']} s (0 means it was reopened from disk).",
        "",
        "Example test users: " + "; ".join(f"user {e['user']}: {', '.join(e['keywords'])} ({e['targets']} targets)"
                                           for e in ml["examples"]) + ".",
        "",
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
        "",
        "## Acceptance",
        "",
    ]
    lines += [f"- {name.replace('_', ' ')}: {'yes' if ok else 'NO'}" for name, ok in checks.items()]
    lines.append("")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
