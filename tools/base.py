"""Typed tools: a function's signature becomes a pydantic argument model, its docstring's first line
the description the LLM sees. A call returns data plus one observation line; failures (bad arguments,
unknown attributes, a broken index) come back as observations, never as exceptions."""

from __future__ import annotations

import functools
import inspect
import logging
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from agent.llm import ToolSpec

log = logging.getLogger(__name__)


class ToolResult(BaseModel):
    """What every tool returns: ok or not, one observation line, plain data, and the catalog ids it names."""

    tool: str
    ok: bool
    observation: str
    data: Any = None
    ids: list[str] = Field(default_factory=list)


class ToolError(Exception):
    """An expected failure whose message is the observation the planner reads."""


@dataclass(frozen=True)
class Tool:
    """A tool as data: name, description, argument model and the bound callable."""

    name: str
    description: str
    args_model: type[BaseModel]
    func: Callable[..., ToolResult]

    def __call__(self, **arguments: Any) -> ToolResult:
        return self.func(**arguments)

    def spec(self) -> ToolSpec:
        """The planner's view: name, one-line description, JSON schema of the arguments."""
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        return ToolSpec(name=self.name, description=self.description, parameters=schema)


def args_model_for(func: Callable[..., Any], name: str) -> type[BaseModel]:
    """A pydantic model of the function's keyword arguments (Annotated constraints included)."""
    hints = typing.get_type_hints(func, include_extras=True)
    fields: dict[str, Any] = {}
    for param in inspect.signature(func).parameters.values():
        if param.name == "self":
            continue
        default: Any = ... if param.default is inspect.Parameter.empty else param.default
        if default == ():  # signatures use () for "no values" (no mutable defaults); the model holds lists
            default = Field(default_factory=list)
        fields[param.name] = (hints[param.name], default)
    model_name = "".join(part.title() for part in name.split("_")) + "Args"
    return create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)


def describe_errors(exc: ValidationError) -> str:
    """A validation error as one line: `field: message; field: message`."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "arguments"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def tool(func: Callable[..., ToolResult]) -> Callable[..., ToolResult]:
    """Mark a method as a tool: validate arguments with its model, turn failures into observations."""
    name = func.__name__
    model = args_model_for(func, name)
    description = (inspect.getdoc(func) or name).splitlines()[0].strip()

    @functools.wraps(func)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> ToolResult:
        try:
            bound = inspect.signature(func).bind(self, *args, **kwargs)
            arguments = model.model_validate({k: v for k, v in bound.arguments.items() if k != "self"})
        except ValidationError as exc:
            return ToolResult(tool=name, ok=False, observation=f"{name}: invalid arguments: {describe_errors(exc)}")
        except TypeError as exc:
            return ToolResult(tool=name, ok=False, observation=f"{name}: invalid arguments: {exc}")
        try:
            return func(self, **arguments.model_dump())
        except ToolError as exc:
            return ToolResult(tool=name, ok=False, observation=f"{name}: {exc}")
        except Exception as exc:  # a failing index must not crash the turn: report it, keep the trace
            log.exception("tool %s failed", name)
            return ToolResult(tool=name, ok=False, observation=f"{name} failed: {type(exc).__name__}: {exc}")

    wrapper.tool_name = name  # type: ignore[attr-defined]
    wrapper.args_model = model  # type: ignore[attr-defined]
    wrapper.description = description  # type: ignore[attr-defined]
    return wrapper


def collect_tools(owner: Any) -> list[Tool]:
    """The @tool methods of an object, bound, in definition order."""
    found = []
    for attr in type(owner).__dict__.values():
        if callable(attr) and hasattr(attr, "tool_name"):
            bound = getattr(owner, attr.__name__)
            found.append(Tool(attr.tool_name, attr.description, attr.args_model, bound))
    return found
