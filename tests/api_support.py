"""Helpers for the API tests: an app over the tiny catalog, a real redis-server, real `concierge serve` processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from agent.llm import ScriptedChatModel
from agent.policy import PolicyConfig
from conversation.service import ConversationService, ServiceConfig
from conversation.store import SessionStore
from tests.helpers import tiny_movies
from ui.api import create_app
from ui.api_models import ApiConfig

START_TIMEOUT_S = 240.0  # a cold start imports numpy/scipy/FastAPI: ~5 s, but minutes on a busy 2-core machine


def make_service(*, model=None, store: SessionStore | None = None, **policy) -> ConversationService:
    model = model if model is not None else ScriptedChatModel(default="Here you go.")
    config = ServiceConfig(policy=PolicyConfig(**{"recommend_below": 2, **policy}), llm_timeout_s=5)
    return ConversationService(tiny_movies(), model=model, config=config, store=store)


def make_app(service: ConversationService | None = None, **limits):
    """The API over the tiny catalog with the scripted model, without the web pages (no Gradio import)."""
    return create_app(service or make_service(), api_config=ApiConfig(mount_web=False, **limits))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server (Debian's package) on a free port, no persistence; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian package redis-server; `make system-deps` installs it)")
    import redis

    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {port}") from None
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def write_tiny_catalog(folder: Path) -> Path:
    """The tiny movie catalog as a custom-catalog folder, for server processes."""
    catalog = tiny_movies()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "catalog.json").write_text(json.dumps({"name": catalog.name, "attribute_types": ["genre", "decade", "tag"]}))
    (folder / "items.jsonl").write_text("".join(item.model_dump_json(include={"id", "title", "text", "attributes",
                                                                              "keywords"}) + "\n"
                                                for item in catalog.items.values()))
    rows = "".join(f"{x.user},{x.item},{x.rating}\n" for x in catalog.interactions)
    (folder / "interactions.csv").write_text("user,item,rating\n" + rows)
    return folder


def server_env(tmp: Path, store: str) -> dict[str, str]:
    """Settings for a server process that needs no model weights: graph mode, template replies."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCIERGE_")}
    env.update(
        CONCIERGE_CATALOG=str(write_tiny_catalog(tmp / "catalog")), CONCIERGE_DATA_DIR=str(tmp / "data"),
        CONCIERGE_SESSION_STORE=store, CONCIERGE_PHRASE_WITH_LLM="false", CONCIERGE_RERANK_WITH_LLM="false",
        CONCIERGE_MODE="graph", CONCIERGE_WEB_UI="false", CONCIERGE_RECOMMEND_BELOW="1", CONCIERGE_MAX_QUESTIONS="3",
        GRADIO_ANALYTICS_ENABLED="False",
    )
    return env


class Server:
    """`concierge serve` in a subprocess on a free port; or, with `factory`, what each of its workers runs."""

    def __init__(self, env: dict[str, str], cwd: Path, *, factory: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = cwd / f"server-{self.port}.log"
        command = (["uvicorn", "--factory", "ui.api:app_from_env"] if factory else ["ui.cli", "serve"])
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", *command, "--port", str(self.port)],
                                         env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self) -> Server:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {START_TIMEOUT_S:.0f}s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks run, as in a crash."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def parse_sse(body: str) -> list[tuple[str, dict]]:
    """Server-Sent Events as (event, JSON data) pairs."""
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((fields["event"], json.loads(fields["data"])))
    return events
