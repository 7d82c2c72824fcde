"""How fast the embedded LLM is on this machine: load, prompt processing, decoding, first token."""

from __future__ import annotations

import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

COMMAND = "concierge bench llm"
# Used when no catalog file is at hand: fixed text, so runs stay comparable.
_FALLBACK_TEXT = (
    "A quiet detective returns to the coastal town where she grew up, to look into a fire that "
    "destroyed the old cinema. Her brother, who runs the harbour cafe, would rather she left it alone. "
    "Over one wet autumn week she meets the projectionist's daughter, a retired fisherman who kept "
    "every ticket stub since 1962, and a developer with plans for the seafront. Genres: mystery, "
    "drama. Runtime 104 minutes. Critics praised the photography and the understated score. "
)


def run_llm_bench(
    model_path: Path,
    *,
    n_threads: int,
    n_ctx: int,
    prompt_tokens: int = 500,
    decode_tokens: int = 128,
    repeats: int = 3,
    progress: bool = True,
    catalog: Path | None = None,
) -> dict[str, Any]:
    """Load the model once, then per repeat time a cold prompt evaluation and a greedy decode.

    Every repeat starts from an empty KV cache, so the prompt is processed in full each time.
    """
    from agent.backends.local import load_llama

    model_path = Path(model_path)
    console = Console(stderr=True)
    runs: list[dict[str, float]] = []
    load_before = os.getloadavg()[0]
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console, disable=not progress, transient=False,
    ) as bar:
        task = bar.add_task("loading model", total=1 + repeats)
        started = time.perf_counter()
        llama = load_llama(model_path, n_threads=n_threads, n_ctx=n_ctx)
        load_s = time.perf_counter() - started
        bar.advance(task)
        tokens, source = _prompt_tokens(llama, prompt_tokens, catalog)
        for repeat in range(repeats):
            bar.update(task, description=f"repeat {repeat + 1}/{repeats}: {len(tokens)}-token prompt, {decode_tokens} decoded")
            runs.append(_time_run(llama, tokens, decode_tokens))
            bar.advance(task)
        llama.close()
    bandwidth = memory_read_bandwidth()
    return {
        "command": COMMAND,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "memory_read_gb_s": bandwidth,
        "model": {"file": model_path.name, "path": str(model_path), "size_bytes": model_path.stat().st_size},
        "machine": machine_info(n_threads=n_threads, n_ctx=n_ctx),
        # Other processes competing for the cores change every number here; record how busy it was.
        "load_average_1m": {"start": load_before, "end": os.getloadavg()[0]},
        "prompt_source": source,
        "prompt_tokens": len(tokens),
        "decode_tokens": decode_tokens,
        "repeats": repeats,
        "load_s": load_s,
        "prompt_tokens_per_s": _p50(runs, "prompt_tokens_per_s"),
        "decode_tokens_per_s": _p50(runs, "decode_tokens_per_s"),
        "ttft_s": _p50(runs, "ttft_s"),
        "runs": runs,
    }


def _time_run(llama: Any, tokens: list[int], decode_tokens: int) -> dict[str, float]:
    """One cold run: prompt evaluation, first token, then steady greedy decoding (EOS ignored)."""
    llama.reset()  # empty KV cache: the whole prompt is processed
    started = time.perf_counter()
    llama.eval(tokens)
    prompt_s = time.perf_counter() - started
    first = end = time.perf_counter()
    stream = llama.generate(tokens, temp=0.0, repeat_penalty=1.0)  # prompt cached: samples at once
    for count, _token in enumerate(stream, start=1):
        if count == 1:
            first = time.perf_counter()
        if count >= decode_tokens:
            end = time.perf_counter()
            break
    stream.close()
    decode_s = end - first
    return {
        "prompt_s": prompt_s,
        "prompt_tokens_per_s": len(tokens) / prompt_s,
        "ttft_s": first - started,
        "decode_s": decode_s,
        "decode_tokens_per_s": (decode_tokens - 1) / decode_s if decode_s > 0 else 0.0,
    }


def _prompt_tokens(llama: Any, n: int, catalog: Path | None) -> tuple[list[int], str]:
    """Exactly `n` tokens of catalog text (MovieLens titles and genres when available)."""
    text, source = _catalog_text(catalog)
    header = "Below is part of a movie catalog. Suggest three films for a rainy evening and say why.\n\n"
    body = (header + text).encode("utf-8")
    tokens = llama.tokenize(body, add_bos=False, special=False)
    while len(tokens) < n:
        tokens += tokens
    return tokens[:n], source


def _catalog_text(catalog: Path | None, limit: int = 20_000) -> tuple[str, str]:
    path = None
    if catalog is not None:
        path = catalog / "movies.csv" if catalog.is_dir() else catalog
    if path is not None and path.is_file():
        with path.open(encoding="utf-8", errors="replace") as src:
            return src.read(limit), str(path)
    return _FALLBACK_TEXT, "built-in text"


def memory_read_bandwidth(size_mb: int = 512, repeats: int = 7) -> dict[str, float]:
    """Sequential read speed of RAM (numpy sum over a buffer larger than any cache), GB/s.

    Decoding one token streams every weight once, so decode tokens/s is at most this divided by the
    model size; on a virtual machine this number can be far below the hardware's.
    """
    import numpy as np

    data = np.ones(size_mb * 1024 * 1024 // 8)
    speeds = []
    for _ in range(repeats):
        started = time.perf_counter()
        data.sum()
        speeds.append(data.nbytes / (time.perf_counter() - started) / 1e9)
    return {"median": statistics.median(speeds), "min": min(speeds), "max": max(speeds)}


def machine_info(*, n_threads: int, n_ctx: int) -> dict[str, Any]:
    """Cores, CPU model, llama.cpp build: what the numbers depend on."""
    import llama_cpp

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass  # not Linux: keep platform's answer
    system_info = llama_cpp.llama_print_system_info()
    return {
        "cpu_model": cpu,
        "cores_logical": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "n_threads": n_threads,
        "n_ctx": n_ctx,
        "llama_cpp_python": llama_cpp.__version__,
        "llama_cpp_system_info": system_info.decode() if isinstance(system_info, bytes) else str(system_info),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_llm_report(result: dict[str, Any], path: Path) -> Path:
    """Write the benchmark as Markdown (a summary table, the runs, the machine, the command)."""
    machine, model, load = result["machine"], result["model"], result["load_average_1m"]
    busy = max(load.values()) > (machine["cores_usable"] or 1)
    lines = [
        "# Embedded LLM benchmark",
        "",
        f"Model `{model['file']}` ({model['size_bytes'] / 1e9:.2f} GB) on {machine['cpu_model']}, "
        f"{machine['n_threads']} threads ({machine['cores_usable']} usable cores), "
        f"llama-cpp-python {machine['llama_cpp_python']}. Measured {result['date']}; 1-minute load "
        f"average {load['start']:.1f} at the start and {load['end']:.1f} at the end"
        + (" (above the core count: other processes were competing for the CPU)." if busy else "."),
        "",
        f"Reproduce with: `{result['command']}` "
        f"(prompt {result['prompt_tokens']} tokens from {result['prompt_source']}, "
        f"decode {result['decode_tokens']} tokens, {result['repeats']} repeats, median shown).",
        "",
        "| metric | value |",
        "|---|---|",
        f"| model load | {result['load_s']:.2f} s |",
        f"| prompt processing | {_num(result['prompt_tokens_per_s'])} tokens/s |",
        f"| decode | {_num(result['decode_tokens_per_s'])} tokens/s |",
        f"| time to first token ({result['prompt_tokens']}-token prompt, cold cache) | {result['ttft_s']:.2f} s |",
        "",
    ]
    bandwidth = result.get("memory_read_gb_s")
    if bandwidth:
        bound = bandwidth["median"] * 1e9 / model["size_bytes"]
        lines += [
            f"Memory read bandwidth on this machine, measured in the same run: median {bandwidth['median']:.2f} GB/s "
            f"(min {bandwidth['min']:.2f}, max {bandwidth['max']:.2f}). Each decoded token reads all "
            f"{model['size_bytes'] / 1e9:.2f} GB of weights, so decoding cannot exceed about {bound:.2g} tokens/s "
            "here: the decode rate above is bounded by memory, not by the code.",
            "",
        ]
    lines += [
        "## Runs",
        "",
        "| repeat | prompt s | prompt tok/s | TTFT s | decode s | decode tok/s |",
        "|---|---|---|---|---|---|",
    ]
    for i, run in enumerate(result["runs"], start=1):
        lines.append(
            f"| {i} | {run['prompt_s']:.2f} | {_num(run['prompt_tokens_per_s'])} | {run['ttft_s']:.2f} "
            f"| {run['decode_s']:.2f} | {_num(run['decode_tokens_per_s'])} |"
        )
    lines += ["", "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in machine.items() if key != "llama_cpp_system_info"]
    lines += ["", f"llama.cpp system info: `{machine['llama_cpp_system_info'].strip()}`", ""]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _num(value: float) -> str:
    """Rates with three significant digits (a slow machine must not print 0.0)."""
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def _p50(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs) if runs else 0.0
