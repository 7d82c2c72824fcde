"""Headless Chromium (Debian's package) driven by Playwright, and a real server process to point it at."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ui.screenshot import CHROMIUM_ARGS, free_port, serving  # noqa: F401 (the tests import them from here)


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Debian's chromium is not installed: run `make system-deps` (apt-get install chromium)")
    return path


@contextlib.contextmanager
def running_server(args: list[str], *, port: int, env: dict[str, str] | None = None, ready_path: str = "/",
                   timeout_s: float = 180.0, log: Path | None = None) -> Iterator[str]:
    """Start `python -m ui.cli ARGS` for real and wait until it answers HTTP."""
    out = open(log, "w") if log else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, "-m", "ui.cli", *args], env={**os.environ, **(env or {})},
                            stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}; see {log}")
            try:
                with urllib.request.urlopen(url + ready_path, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"server not ready after {timeout_s}s")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log:
            out.close()


class SlowTokens:
    """Wraps a (scripted) chat model so streamed chunks arrive with a pause: a browser can watch text grow."""

    def __init__(self, model, *, chunk_delay_s: float) -> None:
        self.model = model
        self.name = model.name
        self.chunk_delay_s = chunk_delay_s

    def chat(self, messages, *, on_token=None, **options):
        def slowly(chunk: str) -> None:
            time.sleep(self.chunk_delay_s)
            on_token(chunk)

        return self.model.chat(messages, on_token=None if on_token is None else slowly, **options)


def local_only(route, base_url: str | tuple[str, ...], outside: list[str]) -> None:
    """CI machines reach only package registries: the page must work with everything else cut off."""
    request_url = route.request.url
    allowed = (base_url,) if isinstance(base_url, str) else tuple(base_url)
    if request_url.startswith((*allowed, "data:", "blob:")):
        route.continue_()
    else:
        outside.append(request_url)
        route.abort()
