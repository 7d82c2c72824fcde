"""`concierge eval nlu`: liked/disliked attribute extraction on the labelled set, per reader."""

from __future__ import annotations

import json as jsonlib
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import track

from agent.backends import build_chat_model
from evals.cli.common import LASTFM_ROOT, REPO, err
from evals.models import CatalogLoader, ModelFactory, cached_model
from retrieval.loaders import load_catalog

CATALOGS = {"movielens": REPO / "data" / "movielens-latest-small", "lastfm": LASTFM_ROOT / "lastfm"}
DEFAULT_MODES = {False: "matcher,llm,combined", True: "matcher,reader-matcher,reader,reader-product"}


def eval_nlu(
    modes: Annotated[str | None, typer.Option(help="Comma-separated readers: matcher, llm, combined, reader-matcher, "
                     "reader; default matcher,llm,combined (multilingual: matcher,reader-matcher,reader).")] = None,
    sets: Annotated[str, typer.Option(help="Comma-separated message sets: labelled, heldout (development), heldout-2, "
                    "multilingual.")] = "labelled,heldout,heldout-2",
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N labelled messages.")] = None,
    report: Annotated[Path, typer.Option(help="Where the Markdown report goes.")] = Path("reports/nlu.md"),
    multilingual_report: Annotated[Path, typer.Option(help="Report of the multilingual set.")] = Path("reports/nlu-multilingual.md"),
    json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    cache: Annotated[Path | None, typer.Option(help="LLM response cache (SQLite); default <data_dir>/llm-cache.sqlite3.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Call the model every time.")] = False,
    *,
    model_factory: ModelFactory = build_chat_model,
    catalog_loader: CatalogLoader = load_catalog,
) -> None:
    """Precision/recall/F1 of liked and disliked attributes: matcher-only, LLM-only and combined.

    The LLM and combined readers send the same request for a message; through the response cache the
    model answers it once, and a rerun replays every answer."""
    from conversation.settings import Settings
    from evals.nlu_eval import SETS, load_examples, write_nlu_report

    chosen, chosen_sets, multilingual = _choices(modes, sets)
    settings = Settings()
    by_set = {name: load_examples(SETS[name])[:limit] for name in chosen_sets if name != "multilingual"}
    if multilingual:
        by_set["multilingual"] = load_examples(SETS["multilingual"])[:limit]
    examples = [e for block in by_set.values() for e in block]
    model, prompt, readers = _readers(examples, chosen, settings, cache=None if no_cache else cache,
                                      uses_cache=not no_cache, model_factory=model_factory,
                                      catalog_loader=catalog_loader)
    if multilingual:
        block = by_set.pop("multilingual")
        path = run_multilingual(block, chosen, readers, model=model, prompt=prompt, modes_arg=modes, path=multilingual_report)
        err.print(f"report written to {path}")
        if not by_set:
            return
    calls: list = []
    blocks = {name: _score_set(name, block, chosen, readers, model, prompt, calls) for name, block in by_set.items()}
    result = {"command": "concierge eval nlu" + (f" --modes {modes}" if modes else "")
              + (f" --sets {sets}" if sets != "labelled,heldout,heldout-2" else ""),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "sets": blocks}
    if calls:
        result["llm"] = _llm_summary(calls, model)
    path = write_nlu_report(result, report)
    if json:
        print(jsonlib.dumps({**result, "report": str(path)}))
        return
    for set_name, block in blocks.items():
        for mode, row in block["modes"].items():
            err.print(f"{set_name} {mode}: F1 all {row['all']['f1']:.3f} (liked {row['liked']['f1']:.3f}, "
                      f"disliked {row['disliked']['f1']:.3f})")
    err.print(f"report written to {path}")


def _choices(modes: str | None, sets: str) -> tuple[list[str], list[str], bool]:
    """The readers and message sets asked for (unknown names refused), and whether the multilingual set is one."""
    from evals.nlu_eval import MODES, SETS

    multilingual = "multilingual" in sets.split(",")
    chosen = [m.strip() for m in (modes or DEFAULT_MODES[multilingual]).split(",") if m.strip()]
    if not chosen or set(chosen) - set(MODES):
        err.print(f"[bold red]error:[/] --modes takes {', '.join(MODES)}; got {modes!r}")
        raise typer.Exit(2)
    chosen_sets = [x.strip() for x in sets.split(",") if x.strip()]
    if not chosen_sets or set(chosen_sets) - set(SETS):
        err.print(f"[bold red]error:[/] --sets takes {', '.join(SETS)}; got {sets!r}")
        raise typer.Exit(2)
    return chosen, chosen_sets, multilingual


def _readers(examples, chosen: list[str], settings, *, cache: Path | None, uses_cache: bool,
             model_factory: ModelFactory, catalog_loader: CatalogLoader):
    """The model and prompt (when a reader needs the LLM) and each dataset's readers by mode."""
    from agent.prompts import load_prompt
    from conversation.nlu import Lexicon
    from conversation.nlu_llm import AttributeShortlist
    from evals.nlu_eval import Reader, askable_attributes

    model, prompt, embedder = None, None, None
    if any(m not in ("matcher", "reader-matcher") for m in chosen):
        from retrieval.embeddings import SentenceTransformerEmbedder

        store = (cache or settings.data_dir / "llm-cache.sqlite3") if uses_cache else None
        model, prompt = cached_model(settings, store, model_factory=model_factory), load_prompt("extract.v1")
        embedder = SentenceTransformerEmbedder(settings.embedding_model_path)
    readers = {}
    for name in sorted({e.dataset for e in examples}):
        catalog = catalog_loader(CATALOGS[name])
        lexicon = Lexicon.from_catalog(catalog)
        shortlist = AttributeShortlist(askable_attributes(catalog, lexicon), embedder) if embedder else None
        by_mode = message_readers(lexicon, shortlist, model, prompt, settings)
        if "reader-product" in chosen:  # what a chat turn reads: the default service (linker, then reader)
            from conversation.app import build_service

            by_mode["reader-product"] = build_service(settings, catalog=catalog, model=model, embedder=embedder)
        readers[name] = Reader(lexicon, shortlist, by_mode)
    return model, prompt, readers


def _score_set(set_name: str, block, chosen: list[str], readers, model, prompt, calls: list) -> dict:
    """One message set read by every chosen reader: scores, and what the combined reader sent to the LLM."""
    from agent.state import ConvState
    from conversation.nlu import understand
    from conversation.nlu_llm import needs_llm
    from evals.nlu_eval import predict, score

    result_modes = {}
    asks = [needs_llm(understand(ex.text, ConvState(session_id="nlu-eval"), readers[ex.dataset].lexicon), ex.text)
            for ex in block]
    sent: list[dict] = []  # what the combined reader made of each message it asked the LLM about
    for mode in chosen:
        predictions = [predict(mode, ex, readers[ex.dataset], model=model, prompt=prompt,
                               on_llm=None if mode.startswith("reader") else calls.append)
                       for ex in track(block, description=f"{set_name}: {mode} reader", console=err,
                                       disable=mode == "matcher")]
        result_modes[mode] = score(block, predictions)
        if mode == "combined":
            sent = [{"text": ex.text, "gold": [sorted(ex.liked), sorted(ex.disliked)], "read": [sorted(p[0]), sorted(p[1])]}
                    for ex, p, ask in zip(block, predictions, asks, strict=True) if ask]
    return {"examples": len(block), "by_dataset": dict(Counter(e.dataset for e in block)),
            "modes": result_modes, "llm_asked": sum(asks) if "combined" in chosen else None, "llm_messages": sent}


def _llm_summary(calls: list, model) -> dict:
    answered = [c.trace.latency_s for c in calls if c.trace is not None]  # cached calls carry their recorded latency
    cache = getattr(model, "cache", None)
    return {"model": model.name, "calls": len(calls), "fallbacks": sum(c.fallback is not None for c in calls),
            "cache_hits": cache.hits if cache is not None else 0,
            "mean_latency_s": sum(answered) / max(len(answered), 1)}


def message_readers(lexicon, shortlist, model, prompt, settings) -> dict:
    """The product's message reader by eval mode: without a model, and with translation and the extractor."""
    from agent.prompts import load_prompt
    from conversation.reader import MessageReader

    readers = {"reader-matcher": MessageReader(lexicon)}
    if model is not None:
        readers["reader-translate-all"] = MessageReader(lexicon, model=model, shortlist=shortlist, extract_prompt=prompt,
                                                        translate_prompt=load_prompt("translate.v1"), translate_all=True,
                                                        extract_timeout_s=settings.llm_timeout_s,
                                                        translate_timeout_s=settings.llm_timeout_s)
        readers["reader"] = MessageReader(lexicon, model=model, shortlist=shortlist, extract_prompt=prompt,
                                          translate_prompt=load_prompt("translate.v1"),
                                          extract_timeout_s=settings.llm_timeout_s, translate_timeout_s=settings.llm_timeout_s)
    return readers


def run_multilingual(block, chosen, readers, *, model, prompt, modes_arg, path: Path) -> Path:
    """Every chosen reader over the multilingual set, F1 by split and language, cost per message, and the
    language check's rates on the English sets."""
    import time

    from conversation.translate import is_english
    from evals.nlu_eval import SETS, detector_rates, load_examples, multilingual_scores, predict, write_multilingual_report

    result_modes = {}
    for mode in chosen:
        readings, seconds, predictions = [], [], []
        for ex in track(block, description=f"multilingual: {mode} reader", console=err, disable=mode == "matcher"):
            started = time.perf_counter()
            predictions.append(predict(mode, ex, readers[ex.dataset], model=model, prompt=prompt, on_llm=readings.append))
            seconds.append(time.perf_counter() - started)
        calls = [c for r in readings for c in r.llm_calls]
        result_modes[mode] = {**multilingual_scores(block, predictions), "cost": {
            "mean_s": sum(seconds) / max(len(seconds), 1), "calls": len(calls),
            "translate": sum(c.purpose == "translate" for c in calls), "extract": sum(c.purpose == "extract" for c in calls),
            "fallbacks": sum(len(r.fallbacks) for r in readings)}}
        genre = result_modes[mode]["splits"]
        err.print(f"multilingual {mode}: genre F1 dev {genre['dev']['genre']['f1']:.3f}, heldout "
                  f"{genre['heldout']['genre']['f1']:.3f}; all F1 both {genre['both']['all']['f1']:.3f}")
    english = [e for name in ("labelled", "heldout", "heldout-2") for e in load_examples(SETS[name])]
    detectors = {"function words, then py3langid (used)": is_english, "py3langid alone": _langid_is_english}
    result = {"command": "concierge eval nlu --sets multilingual" + (f" --modes {modes_arg}" if modes_arg else ""),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "examples": len(block),
              "langs": list(dict.fromkeys(e.lang for e in block)), "modes": result_modes,
              "detectors": detector_rates([*english, *block], detectors)}
    return write_multilingual_report(result, path)


def _langid_is_english(text: str) -> bool:
    import py3langid

    return not text.strip() or py3langid.classify(text)[0] == "en"
