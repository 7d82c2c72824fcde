"""The server side of `concierge bench serve`: a chat model with a fixed delay, the app factory, the process.

The server is the real API (`ui.api.create_app`) under uvicorn in its own process; only the chat model is
replaced, by `DelayedChatModel`, so every turn costs a known LLM time and the rest is the server's overhead.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from agent.llm import ChatReply, LLMTimeout, Message, TokenCallback, ToolSpec, Usage
from evals.serve_machine import SleepProbe

DELAY_ENV = "CONCIERGE_BENCH_LLM_DELAY_S"
THREADS_ENV = "CONCIERGE_BENCH_TURN_THREADS"
_USER_SAID = re.compile(r"User said: (.*?)</data>", re.DOTALL)


class DelayedChatModel:
    """A chat model that takes exactly `delay_s` per call and answers deterministic text (benchmarks only).

    With `on_token` the first chunk arrives after `first_token_s` (half the delay unless given) and the
    rest are spread until `delay_s`, like a streaming backend. With `echo`, the reply quotes what the user
    said (the reply prompt's "User said:" line), as a real model would refer to it; this makes a session
    whose state was mixed with another's show the other's words.
    """

    def __init__(self, *, delay_s: float, first_token_s: float | None = None, echo: bool = True,
                 text: str = "Here is what I found for you.", name: str = "delayed") -> None:
        if delay_s < 0 or (first_token_s is not None and not 0 <= first_token_s <= delay_s):
            raise ValueError("need 0 <= first_token_s <= delay_s")
        self.name = name
        self.delay_s = delay_s
        self.first_token_s = delay_s / 2 if first_token_s is None else first_token_s
        self.echo = echo
        self.text = text

    def chat(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        tool_choice: str | None = None,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        timeout_s: float | None = None,
        on_token: TokenCallback | None = None,
    ) -> ChatReply:
        started = time.perf_counter()
        if timeout_s is not None and self.delay_s > timeout_s:
            time.sleep(timeout_s)
            raise LLMTimeout(f"delayed model: {self.delay_s:g}s exceeds the {timeout_s:g}s deadline")
        text = self._reply(messages)
        chunks = [text[i : i + 8] for i in range(0, len(text), 8)]
        if on_token is None or not chunks:
            time.sleep(self.delay_s)
        else:
            time.sleep(self.first_token_s)
            step = (self.delay_s - self.first_token_s) / len(chunks)
            for n, chunk in enumerate(chunks):
                on_token(chunk)
                # Sleep to a schedule, not a fixed step: time spent in on_token is not added to the delay.
                time.sleep(max(0.0, started + self.first_token_s + (n + 1) * step - time.perf_counter()))
        prompt_words = sum(len((m.content or "").split()) for m in messages)
        return ChatReply(text=text, model=self.name, usage=Usage(prompt_tokens=prompt_words,
                                                                 completion_tokens=len(text.split())),
                         latency_s=time.perf_counter() - started, first_token_s=self.first_token_s)

    def _reply(self, messages: Sequence[Message]) -> str:
        said = _USER_SAID.search(messages[-1].content or "") if self.echo and messages else None
        if said is None or not said.group(1).strip():
            return self.text
        quoted = " ".join(said.group(1).split())[:120].replace(".", ",")  # stays one sentence after cleaning
        return f"You said: {quoted}, {self.text}"


class BenchInstruments:
    """ASGI middleware of the benchmark's server: a `Server-Timing: app;dur=<ms>` header on each response (the time
    the app took to start it: for a JSON turn, the whole turn inside the app), and `GET /bench/probes`, which hands
    over and resets how late this process's event loop ran a timer and how late a sleeping thread woke.
    """

    def __init__(self, app, *, step_s: float = 0.05) -> None:
        self.app = app
        self.step_s = step_s
        self.loop_late_s: list[float] = []
        self.thread = SleepProbe(step_s).__enter__()  # runs for the life of the server process
        self._watch: asyncio.Task | None = None

    async def _watch_loop(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self.step_s)
            self.loop_late_s.append(time.perf_counter() - started - self.step_s)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._watch is None:
            self._watch = asyncio.get_running_loop().create_task(self._watch_loop())
        if scope["path"] == "/bench/probes":
            taken, self.loop_late_s = self.loop_late_s, []
            body = json.dumps({"loop_late_s": taken, "thread_late_s": self.thread.take()}).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        started = time.perf_counter()

        async def timed(message) -> None:
            if message["type"] == "http.response.start":
                took = f"app;dur={(time.perf_counter() - started) * 1000:.2f}".encode()
                message = {**message, "headers": [*message.get("headers", []), (b"server-timing", took)]}
            await send(message)

        await self.app(scope, receive, timed)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`uvicorn --factory ui.bench_server:bench_app` on a free port, its output in `log`."""

    def __init__(self, env: dict[str, str], *, cwd: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = cwd / "server.log"
        command = [sys.executable, "-m", "uvicorn", "--factory", "ui.bench_server:bench_app",
                   "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float) -> dict[str, Any]:
        """Poll /readyz until it answers 200; returns its body. Raises with the log's tail otherwise."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with code {self.proc.returncode}:\n{self.tail()}")
            try:
                response = httpx.get(f"{self.url}/readyz", timeout=5)
                if response.status_code == 200:
                    return response.json()
            except httpx.HTTPError:
                pass  # not listening yet
            time.sleep(0.5)
        raise RuntimeError(f"the server was not ready after {timeout_s:.0f}s:\n{self.tail()}")

    def memory_mb(self) -> dict[str, float]:
        """Peak (VmHWM) and current (VmRSS) resident memory of the server process, MB (Linux only)."""
        out: dict[str, float] = {}
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    out["peak_rss_mb" if key == "VmHWM" else "rss_mb"] = int(value.split()[0]) / 1024
        except OSError:
            pass  # not Linux, or already gone: memory is left out of the report
        return out

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server process has used so far; NaN where /proc is missing."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)

    def problems(self, limit: int = 20) -> list[str]:
        """The server log's warnings, errors and tracebacks (the first `limit` lines of them)."""
        marks = ("WARNING", "ERROR", "CRITICAL", "Traceback", "Error:", "Exception")
        lines = self.log.read_text(errors="replace").splitlines()
        return [line[:300] for line in lines if any(mark in line for mark in marks)][:limit]

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
