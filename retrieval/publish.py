"""Crash-safe publishing of an on-disk index: versioned data files named by one manifest.

An index is a manifest (JSON) plus data files whose names carry a hash of their content
(`vectors-<sha>.npy`). Publishing writes and fsyncs each data file under a temporary name, renames it to
its versioned name, then writes the manifest (naming every file with its size and sha256) to a temporary
file and replaces the old manifest with one `os.replace`. Whatever step a crash hits, the manifest on
disk names either the complete old version or the complete new one; a reader checks sizes and hashes
before it serves anything, so a damaged or missing file refuses the index (`IndexRefused`) instead of
serving a mix. Files that no manifest names any more are removed after a successful publish.

`step(name)` marks each point a crash can fall between; it does nothing, and tests replace it to
simulate a crash after any step.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

CHUNK = 1 << 20
TMP_PREFIX = ".tmp-"
TMP_GRACE_S = 60.0  # a younger temporary file may belong to a writer that is still writing


class IndexRefused(RuntimeError):
    """The index on disk is missing, damaged or incomplete; it must be rebuilt, never served."""


def step(name: str) -> None:
    """A point between two publishing steps (a no-op; the crash tests replace it)."""


def fsync_dir(folder: Path) -> None:
    """Make renames and removals inside `folder` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def digest(path: Path) -> str:
    """sha256 of a file's bytes."""
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def digest_tree(folder: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file in a folder (one level), by name."""
    return {p.name: {"size": p.stat().st_size, "sha256": digest(p)} for p in sorted(folder.iterdir()) if p.is_file()}


def write_file(folder: Path, stem: str, suffix: str, write: Callable[[Path], None]) -> dict[str, Any]:
    """Write one data file through `write(tmp_path)`, fsync it and give it its versioned name.

    Returns the manifest entry: {"name", "size", "sha256"}.
    """
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{TMP_PREFIX}{uuid.uuid4().hex}{suffix}"
    write(tmp)
    _fsync_file(tmp)
    step(f"{stem}: written")
    sha = digest(tmp)
    entry = {"name": f"{stem}-{sha[:16]}{suffix}", "size": tmp.stat().st_size, "sha256": sha}
    os.replace(tmp, folder / entry["name"])
    step(f"{stem}: renamed")
    return entry


def write_tree(folder: Path, stem: str, write: Callable[[Path], None]) -> dict[str, Any]:
    """Like `write_file` for a library that saves a folder of files: the folder gets a versioned name."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{TMP_PREFIX}{uuid.uuid4().hex}"
    tmp.mkdir()
    write(tmp)
    files = digest_tree(tmp)
    for name in files:
        _fsync_file(tmp / name)
    fsync_dir(tmp)
    step(f"{stem}: written")
    tree = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    entry = {"name": f"{stem}-{tree[:16]}", "files": files}
    target = folder / entry["name"]
    if target.exists():  # the same content was published before, perhaps damaged since: replace it
        aside = folder / f"{TMP_PREFIX}{uuid.uuid4().hex}"
        os.replace(target, aside)
        os.replace(tmp, target)
        shutil.rmtree(aside)
    else:
        os.replace(tmp, target)
    step(f"{stem}: renamed")
    return entry


def publish(folder: Path, manifest_name: str, manifest: Mapping[str, Any]) -> None:
    """Replace the manifest in one atomic rename, then remove data files it no longer names.

    Every data file must already be in place (see `write_file`); `manifest["files"]` maps a role to its
    entry. Only older versions of those files (and stale temporary files) are removed.
    """
    fsync_dir(folder)
    step("data: durable")
    tmp = folder / f"{TMP_PREFIX}{uuid.uuid4().hex}.json"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle)
        handle.flush()
        os.fsync(handle.fileno())
    step("manifest: written")
    os.replace(tmp, folder / manifest_name)
    step("manifest: renamed")
    fsync_dir(folder)
    step("manifest: durable")
    entries = manifest["files"].values()
    clean(folder, keep={manifest_name, *(e["name"] for e in entries)}, prefixes=[_stem(e["name"]) for e in entries])


def _stem(name: str) -> str:
    return name.rsplit("-", 1)[0] + "-"


def clean(folder: Path, *, keep: set[str], prefixes: Iterable[str]) -> None:
    """Remove old versions (names starting with one of `prefixes`) and leftover temporary files."""
    prefixes = tuple(prefixes)
    now = time.time()
    for path in folder.iterdir():
        if path.name in keep or not path.name.startswith((*prefixes, TMP_PREFIX)):
            continue
        try:
            if path.name.startswith(TMP_PREFIX) and now - path.stat().st_mtime < TMP_GRACE_S:
                continue
        except FileNotFoundError:  # its writer renamed it meanwhile
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        step(f"clean: {path.name}")


def read_manifest(folder: Path, manifest_name: str) -> dict[str, Any] | None:
    """The published manifest, or None when there is none; a damaged one is refused."""
    path = folder / manifest_name
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IndexRefused(f"{path} is damaged ({exc}); rebuild the index") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise IndexRefused(f"{path} names no data files (an older format); rebuild the index")
    return manifest


def verified(folder: Path, entry: Mapping[str, Any]) -> Path:
    """The path of a manifest entry after checking its size and sha256 (or every file of a tree)."""
    path = folder / entry["name"]
    checks = [(path / name, spec) for name, spec in entry["files"].items()] if "files" in entry else [(path, entry)]
    for file, spec in checks:
        try:
            size = file.stat().st_size
        except FileNotFoundError:
            raise IndexRefused(f"{file} named by the manifest is missing; rebuild the index") from None
        if size != spec["size"] or digest(file) != spec["sha256"]:
            raise IndexRefused(f"{file} does not match the checksum in its manifest; rebuild the index")
    return path
