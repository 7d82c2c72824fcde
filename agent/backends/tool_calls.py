"""Tool calls in the embedded model's text: Qwen's `<tool_call>{...}</tool_call>` blocks parsed leniently,
the JSON schema a forced call is constrained by, and tools and messages as the chat template wants them."""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import re
from collections.abc import Sequence
from typing import Any

from agent.llm import LLMError, Message, ToolCall, ToolSpec

log = logging.getLogger(__name__)

TOOL_OPEN, TOOL_CLOSE = "<tool_call>", "</tool_call>"


def forced_tools(tools: list[ToolSpec], tool_choice: str | None) -> list[ToolSpec]:
    if not tools or tool_choice in (None, "auto", "none"):
        return []
    if tool_choice == "required":
        return tools
    chosen = [t for t in tools if t.name == tool_choice]
    if not chosen:
        raise LLMError(f"tool_choice {tool_choice!r} is not one of the tools offered: {[t.name for t in tools]}")
    return chosen


def call_schema(tools: list[ToolSpec]) -> dict[str, Any]:
    """JSON schema of one Qwen tool-call object for any of `tools` (name first, then arguments)."""
    variants = [
        {
            "type": "object",
            "properties": {"name": {"const": t.name}, "arguments": inline_refs(t.parameters)},
            "required": ["name", "arguments"],
        }
        for t in tools
    ]
    return variants[0] if len(variants) == 1 else {"oneOf": variants}


def inline_refs(schema: Any, defs: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """Replace local `#/$defs/X` references by their definitions (recursion cut at depth 8)."""
    if isinstance(schema, list):
        return [inline_refs(s, defs, depth) for s in schema]
    if not isinstance(schema, dict):
        return schema
    defs = {**(defs or {}), **schema.get("$defs", {}), **schema.get("definitions", {})}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.rsplit("/", 1)[-1] in defs:
        return inline_refs(defs[ref.rsplit("/", 1)[-1]], defs, depth + 1) if depth < 8 else {}
    return {k: inline_refs(v, defs, depth) for k, v in schema.items() if k not in ("$defs", "definitions")}


def template_message(message: Message) -> dict[str, Any]:
    data: dict[str, Any] = {"role": message.role, "content": message.content or ""}
    if message.tool_calls:
        data["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    if message.role == "tool":
        data["tool_call_id"] = message.tool_call_id
        data["name"] = message.name
    return data


def template_tool(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
    }


# ---- parsing Qwen-style tool calls out of generated text (pure functions; no model needed) ----

_BLOCK = re.compile(re.escape(TOOL_OPEN) + r"(.*?)(?:" + re.escape(TOOL_CLOSE) + r"|(?=" + re.escape(TOOL_OPEN) + r")|\Z)", re.S)
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def parse_tool_calls(text: str, tools: Sequence[ToolSpec]) -> tuple[str, list[ToolCall]]:
    """Split model output into (plain text, tool calls); tolerant of the usual small-model slips.

    Accepts several `<tool_call>` blocks, a missing closing tag, code fences, single quotes, trailing
    text after the JSON, `arguments` given as a JSON string, and a bare JSON call without tags. Calls
    to tools not offered are dropped.
    """
    known = {t.name for t in tools}
    bodies = [m.group(1) for m in _BLOCK.finditer(text)]
    rest = _BLOCK.sub("", text).replace(TOOL_CLOSE, "").strip()
    if not bodies:
        # Small models sometimes drop the tags and write the bare call object.
        bare = _FENCE.sub("", rest)
        obj = loads_lenient(bare) if bare.startswith("{") else None
        call = _as_call(obj, 0) if isinstance(obj, dict) else None
        if call is not None and (not known or call.name in known):
            return "", [call]
        return rest, []
    calls: list[ToolCall] = []
    for index, body in enumerate(bodies):
        obj = loads_lenient(_FENCE.sub("", body.strip()))
        call = _as_call(obj, index) if isinstance(obj, dict) else None
        if call is None:
            log.warning("dropping unparseable tool call: %.200r", body)
        elif known and call.name not in known:
            log.warning("dropping call to unknown tool %r", call.name)
        else:
            calls.append(call)
    return rest, calls


def _as_call(obj: dict[str, Any], index: int) -> ToolCall | None:
    if isinstance(obj.get("function"), dict):
        obj = obj["function"]
    name = obj.get("name")
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        args = loads_lenient(args) if args.strip() else {}
    if not isinstance(name, str) or not name.strip() or not isinstance(args, dict):
        return None
    digest = hashlib.sha1(f"{index}:{name}:{json.dumps(args, sort_keys=True, default=str)}".encode()).hexdigest()
    return ToolCall(id=f"call_{digest[:12]}", name=name.strip(), arguments=args)


def loads_lenient(text: str) -> Any:
    """Parse JSON the way small models write it; None if nothing sensible can be read."""
    text = text.strip()
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        return None
    candidate = text[start:]
    for attempt in (candidate, candidate + "}", candidate + "}}"):
        try:
            return json.JSONDecoder().raw_decode(attempt)[0]  # raw_decode ignores trailing text
        except ValueError:
            pass
    pythonish = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", re.sub(r"\bnull\b", "None", candidate)))
    for attempt in (pythonish, pythonish + "}", pythonish + "}}"):
        try:
            return ast.literal_eval(_balanced_prefix(attempt))
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            pass
    return None


def _balanced_prefix(text: str) -> str:
    """The text up to where its first bracket closes (ignoring brackets inside quotes)."""
    depth, quote, escaped = 0, "", False
    for i, ch in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return text[: i + 1]
    return text
