"""Request limits for the API: a body-size cap (ASGI middleware) and token-bucket rate limits."""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimit:
    """Answer 413 when a request body under `prefix` exceeds `max_bytes`, by Content-Length or by bytes received.

    The body is read here (API bodies are small JSON) and replayed to the app, so an oversized body never
    reaches the endpoint, with or without a Content-Length header.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, prefix: str = "/v1/") -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        body = json.dumps({"detail": f"request body too large: the limit is {self.max_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class TokenBuckets:
    """One token bucket per key (a client address, a session): `burst` at once, refilled at `per_min` a minute.

    Buckets live in this process; the least recently used are dropped beyond `max_keys`, which only
    forgives a key, never blocks one.
    """

    def __init__(self, *, per_min: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate_s = per_min / 60.0
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one token; returns 0 if allowed, else the seconds until a token is available."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate_s)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate_s
            self._buckets[key] = (tokens - 1 if wait == 0 else tokens, now)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        return wait


def retry_after(wait_s: float) -> str:
    """A Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))
