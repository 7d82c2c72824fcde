"""The LangChain edge: StructuredTools that validate and run, and hybrid search as a BaseRetriever."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_core.tools import StructuredTool

from retrieval.embeddings import HashingEmbedder
from retrieval.hybrid import HybridSearcher
from retrieval.keywords import KeywordIndex
from retrieval.vector import MemoryVectorIndex
from tests.helpers import tiny_movies
from tools.langchain_export import HybridRetriever, to_langchain_tools
from tools.retrieval_tools import RetrievalTools


@pytest.fixture(scope="module")
def tools() -> RetrievalTools:
    catalog = tiny_movies()
    searcher = HybridSearcher(catalog, KeywordIndex.build(catalog), MemoryVectorIndex.build(catalog, HashingEmbedder(64)))
    return RetrievalTools(catalog, searcher)


def test_every_tool_exports_with_its_schema(tools):
    exported = {t.name: t for t in to_langchain_tools(tools)}
    assert set(exported) == {t.name for t in tools.tools()}
    hybrid = exported["search_hybrid"]
    assert isinstance(hybrid, StructuredTool)
    assert hybrid.args["k"]["maximum"] == 100


def test_exported_tool_runs_and_returns_observation_with_artifact(tools):
    hybrid = {t.name: t for t in to_langchain_tools(tools)}["search_hybrid"]
    message = hybrid.invoke({"type": "tool_call", "id": "call-1", "name": "search_hybrid",
                             "args": {"query": "funny pixar", "k": 2}})
    assert message.tool_call_id == "call-1"
    assert "Toy Story" in message.content
    assert message.artifact["ids"] and set(message.artifact["ids"]) <= set(tools.catalog.items)


def test_exported_tool_validates_arguments(tools):
    hybrid = {t.name: t for t in to_langchain_tools(tools)}["search_hybrid"]
    answer = hybrid.invoke({"query": "", "k": 0})
    assert "invalid arguments" in answer and "query" in answer and "k" in answer
    unknown = hybrid.invoke({"query": "funny", "must_have": ["comdy"]})
    assert "closest: Comedy" in unknown


def test_retriever_returns_documents_with_ids_and_evidence(tools):
    retriever = HybridRetriever(tools=tools, k=3, must_not=["Animation"])
    docs = retriever.invoke("funny")
    assert docs and all(isinstance(d, Document) for d in docs)
    assert all(d.metadata["id"] in tools.catalog.items for d in docs)
    assert "1" not in {d.metadata["id"] for d in docs}
    assert docs[0].metadata["why"]
