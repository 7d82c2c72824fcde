"""Markdown reports for the ReDial benchmark and for linking accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SHOWN = ("recall@1", "recall@10", "recall@50", "ndcg@10", "ndcg@50", "mrr@10", "mrr@50")
ANCHORS = [  # iEvaLM-CRS (Wang et al., EMNLP 2023), ReDial test split, R@1 / R@10 / R@50
    ("KBRD (trained on ReDial)", ".028", ".169", ".366"),
    ("BARCOR (trained on ReDial)", ".031", ".170", ".372"),
    ("UniCRS (trained on ReDial)", ".050", ".215", ".413"),
    ("ChatGPT zero-shot", ".037", ".174", "–"),
]


def _cell(metric: dict[str, Any]) -> str:
    low, high = metric.get("ci95") or (None, None)
    ci = f" [{low:.3f}, {high:.3f}]" if low is not None else ""
    return f"{metric['value']:.3f}{ci}"


def metrics_table(block: dict[str, Any]) -> list[str]:
    lines = ["| metric | value [95% CI] |", "|---|---|"]
    lines += [f"| {name} | {_cell(block[name])} |" for name in SHOWN if name in block]
    return lines


def write_redial_report(result: dict[str, Any], path: Path) -> Path:
    s = result["summary"]
    lines = [
        "# ReDial, iEvaLM \"Original\" protocol, scored through the product", "",
        f"- command: `{result['command']}`", f"- date: {result['date']}", f"- config: `{result['config']}` "
        f"(settings changed from the defaults: `{result['overrides']}`)",
        f"- data: `{result['data']}`; catalog: {result['catalog_items']} movies of id2info.json; interactions: "
        f"{result['interactions']} MovieLens ratings mapped by IMDb id (no ReDial dialog feeds the ranker)",
        f"- samples: {s['samples']}, labels: {s['labels']}; wall time {result['seconds']:.0f} s", "",
        "## All labels (as iEvaLM counts: every label of a sample is one case)", "", *metrics_table(s["all"]), "",
        f"Labels already named earlier in the context: {s['labels_in_context']} of {s['labels']} "
        f"({s['share_in_context']:.1%}). The service never recommends an item already named or shown, so these "
        "count as misses above.", "",
    ]
    if s["not_in_context"]:
        lines += ["## Labels not named in the context", "", *metrics_table(s["not_in_context"]), ""]
    if result.get("halves"):
        lines += ["## Dialogs with even and odd ids", "",
                  "One weight of the product (how much free-text wishes count, 0.3) was chosen by looking at the "
                  "first 400 samples of dialogs with even ids; dialogs with odd ids were never looked at while "
                  "building the product.", "", "| dialogs | samples | R@1 | R@10 | R@50 |", "|---|---|---|---|---|"]
        for name, half in result["halves"].items():
            a = half["all"]
            lines.append(f"| {name} ids | {half['samples']} | " + " | ".join(
                f"{a[k]['value']:.3f} [{a[k]['ci95'][0]:.3f}, {a[k]['ci95'][1]:.3f}]"
                for k in ("recall@1", "recall@10", "recall@50")) + " |")
        lines.append("")
    if result.get("ablations"):
        lines += ["## The same samples with a part of the turn off (or on)", "",
                  "Each row is `concierge eval redial --ablation NAME` over the same samples (its runs file under "
                  "`.concierge/runs/`); CIs as above.", "",
                  "| configuration | R@1 | R@10 | R@50 | NDCG@10 | MRR@10 |", "|---|---|---|---|---|---|"]
        for name, other in {result["config"]: s, **result["ablations"]}.items():
            a = other["all"]
            lines.append(f"| {name} | " + " | ".join(
                f"{a[k]['value']:.3f} [{a[k]['ci95'][0]:.3f}, {a[k]['ci95'][1]:.3f}]" if k.startswith("recall")
                else f"{a[k]['value']:.3f}" for k in ("recall@1", "recall@10", "recall@50", "ndcg@10", "mrr@10")) + " |")
        lines.append("")
    lines += ["## Published anchors (ReDial test split)", "", "| system | R@1 | R@10 | R@50 |", "|---|---|---|---|",
              *[f"| {n} | {a} | {b} | {c} |" for n, a, b, c in ANCHORS], "",
              "Protocol differences: the anchors are on the test split and (except ChatGPT) from models trained on "
              "ReDial dialogs; this run is on the valid split, zero-shot (no ReDial dialog is used for training or "
              "tuning), with the product's own reader, linker and ranker over the same 6,583 candidates; intervals "
              "are percentile bootstraps over samples (2,000 resamples).", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), "utf-8")
    return path


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.3f}" if b else "n/a"


def write_linking_report(result: dict[str, Any], path: Path) -> Path:
    r = result["linking"]
    lines = [
        "# Entity linking on ReDial messages", "",
        f"- command: `{result['command']}`", f"- date: {result['date']}", f"- data: `{result['data']}`",
        "- how: every `@id` in a message is put back as its title from movieMentions, without the year, "
        f"lower-cased half of the time (seed {r['seed']}); the linker reads the message against the id2info "
        "catalog; linked item ids are compared with the true ids (title + year -> id2info)", "",
        "| messages | true mentions | linked | correct | precision | recall |", "|---|---|---|---|---|---|",
        f"| {r['messages']} | {r['true_mentions']} | {r['linked']} | {r['correct']} | {r['precision']:.3f} | "
        f"{r['recall']:.3f} |", "",
        "Of the links counted wrong: "
        f"{r['wrong_version']} name another version of a true title (same title, other year or a duplicate entry), "
        f"{r['linked_unmarked_title']} are titles the person typed out without a marker. Without the latter, precision "
        f"is {_ratio(r['correct'], r['linked'] - r['linked_unmarked_title'])}; counting the right title in another "
        f"version as right too, {_ratio(r['correct'] + r['wrong_version'], r['linked'] - r['linked_unmarked_title'])}.",
        "",
        f"Targets: precision >= 0.95, recall >= 0.90. Mentions whose title is not in id2info: "
        f"{r['mentions_outside_catalog']}. A title typed without its mention marker counts as a false positive "
        "when linked (the file only marks `@id` mentions), and a remake named without its year resolves to the "
        "most popular version (MovieLens ratings), which the dialog may not mean.", "",
        "## Missed (first examples)", "", *[f"- {x['text']!r}: {x['missed']}" for x in r["missed_examples"]], "",
        "## Linked but not marked (first examples)", "", *[f"- {x['text']!r}: {x['linked']}" for x in r["wrong_examples"]],
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), "utf-8")
    return path
