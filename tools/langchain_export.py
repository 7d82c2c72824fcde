"""LangChain at the edge: our typed tools as `StructuredTool`s and hybrid search as a `BaseRetriever`,
for people who plug Concierge's retrieval into their own LangChain agents. Nothing inside Concierge
imports this module."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import StructuredTool, ToolException
from pydantic import ConfigDict, Field, ValidationError

from retrieval.hybrid import Mode, UnknownAttributeError
from tools.base import Tool, ToolResult, describe_errors
from tools.retrieval_tools import RetrievalTools


def to_structured_tool(tool: Tool) -> StructuredTool:
    """One tool as a StructuredTool: arguments validated by its pydantic model; the content is the
    observation line and the artifact the full ToolResult as a dict."""

    def run(**arguments: Any) -> tuple[str, dict[str, Any]]:
        result: ToolResult = tool(**arguments)
        return result.observation, result.model_dump()

    def on_invalid(exc: ValidationError) -> str:
        return f"{tool.name}: invalid arguments: {describe_errors(exc)}"

    return StructuredTool.from_function(
        func=run,
        name=tool.name,
        description=tool.description,
        args_schema=tool.args_model,
        response_format="content_and_artifact",
        handle_validation_error=on_invalid,
    )


def to_langchain_tools(tools: RetrievalTools) -> list[StructuredTool]:
    """Every retrieval tool as a LangChain StructuredTool."""
    return [to_structured_tool(t) for t in tools.tools()]


class HybridRetriever(BaseRetriever):
    """Concierge hybrid search as a LangChain retriever: one Document per hit, id and evidence in metadata."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    tools: RetrievalTools
    k: int = Field(default=10, ge=1, le=100)
    mode: Mode = "hybrid"
    must_have: list[str] = Field(default_factory=list)
    must_not: list[str] = Field(default_factory=list)
    exclude_ids: list[str] = Field(default_factory=list)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        if not query.strip():
            raise ToolException("query must not be empty")
        try:
            hits = self.tools.searcher.search(query, k=self.k, mode=self.mode, must_have=self.must_have,
                                              must_not=self.must_not, exclude_ids=self.exclude_ids)
        except UnknownAttributeError as exc:
            raise ToolException(str(exc)) from exc
        documents = []
        for hit in hits:
            item = self.tools.catalog.items[hit.id]
            documents.append(Document(
                id=hit.id,
                page_content=item.text or item.title,
                metadata={"id": hit.id, "title": hit.title, "score": hit.score, "signals": list(hit.signals),
                          "matched_keywords": list(hit.matched_keywords),
                          "matched_attributes": list(hit.matched_attributes), "why": hit.explain()},
            ))
        return documents
