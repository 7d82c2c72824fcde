"""The agent's parts for one catalog: indexes reopened from `concierge setup`, the linker, the reader, the
session scorer (ranker + item vectors + wish search) and the tools. Built once at start, never per turn."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from agent.graph import ItemAttributeGraph
from agent.llm import ChatModel
from agent.policy import ASK_TYPES, PATH_TYPES
from agent.session_scorer import ScoringConfig, SessionScorer
from conversation.settings import Settings
from retrieval.catalog import Catalog
from retrieval.embeddings import Embedder
from retrieval.indexes import Indexes, open_indexes
from retrieval.ranker import RankerError
from retrieval.vector import ProgressFactory, VectorStoreError

BUILD_WAIT_S = 900.0


@dataclass
class AgentParts:
    """What the product turn needs besides the catalog and the chat model."""

    graph: ItemAttributeGraph
    scorer: SessionScorer
    linker: object | None = None
    reader: object | None = None
    tools: object | None = None
    indexes: Indexes | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def close(self) -> None:
        if self.indexes is not None:
            self.indexes.close()


def default_embedder(settings: Settings) -> Embedder:
    from retrieval.embeddings import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(settings.embedding_model_path)


def reopen_indexes(catalog: Catalog, data_dir: Path, embedder: Embedder, *,
                   progress: ProgressFactory | None = None) -> Indexes:
    """The indexes `concierge setup` built, opened read-only (several workers may share them); built
    first, once, when missing or made for another version of the catalog."""
    try:
        indexes = open_indexes(catalog, data_dir=data_dir, embedder=embedder, writable=False)
        has_interactions = bool(catalog.interactions or catalog.splits.get("train"))
        if indexes.vectors.is_current(catalog) and (indexes.ranker is not None or not has_interactions):
            return indexes
        indexes.close()
    except (VectorStoreError, RankerError):
        pass
    # Another worker building the same index holds its write lock: wait for it, then find it current.
    open_indexes(catalog, data_dir=data_dir, embedder=embedder, writable=True, progress=progress,
                 lock_timeout=BUILD_WAIT_S).close()
    return open_indexes(catalog, data_dir=data_dir, embedder=embedder, writable=False)


def build_parts(settings: Settings, catalog: Catalog, *, model: ChatModel | None,
                embedder: Embedder | None = None, progress: ProgressFactory | None = None) -> AgentParts:
    """Every part the settings turn on (all of them by default)."""
    timings: dict[str, float] = {}
    mark = time.perf_counter()
    graph = ItemAttributeGraph(catalog, types=(*ASK_TYPES, *PATH_TYPES))
    timings["graph_s"] = time.perf_counter() - mark
    indexes = None
    if settings.search_wishes or settings.collaborative or settings.content_similarity:
        mark = time.perf_counter()
        indexes = reopen_indexes(catalog, settings.data_dir, embedder or default_embedder(settings),
                                 progress=progress)
        timings["indexes_s"] = time.perf_counter() - mark
    scorer = SessionScorer(
        catalog, graph,
        ranker=indexes.ranker if indexes is not None and settings.collaborative else None,
        vectors=indexes.vectors if indexes is not None and settings.content_similarity else None,
        search=_wish_search(indexes) if indexes is not None and settings.search_wishes else None,
        config=_scoring_config(settings),
    )
    linker = None
    if settings.link_entities:
        from conversation.linker import EntityLinker

        mark = time.perf_counter()
        linker = EntityLinker.from_catalog(catalog)
        timings["linker_s"] = time.perf_counter() - mark
    tools = None
    if indexes is not None:
        from tools.retrieval_tools import RetrievalTools

        tools = RetrievalTools(catalog, indexes.searcher, indexes.ranker)
    reader = build_reader(settings, catalog, model=model, embedder=indexes.vectors.embedder if indexes else embedder)
    return AgentParts(graph=graph, scorer=scorer, linker=linker, reader=reader, tools=tools, indexes=indexes,
                      timings=timings)


def build_reader(settings: Settings, catalog: Catalog, *, model: ChatModel | None, embedder: Embedder | None):
    """The message reader: the matcher with its multilingual words, then (with a model and
    `read_with_llm`) LLM translation of other languages and the LLM extractor for free text."""
    from agent.prompts import load_prompt
    from conversation.nlu import Lexicon
    from conversation.nlu_llm import AttributeShortlist
    from conversation.reader import MessageReader

    lexicon = Lexicon.from_catalog(catalog)
    if model is None or not settings.read_with_llm:
        return MessageReader(lexicon)
    shortlist = None
    if embedder is not None:  # the extractor picks among the values closest in meaning to the message
        shortlist = AttributeShortlist(lexicon.values(), embedder)
    return MessageReader(lexicon, model=model, shortlist=shortlist, extract_prompt=load_prompt("extract.v1"),
                         translate_prompt=load_prompt("translate.v1"), extract_timeout_s=settings.llm_timeout_s,
                         translate_timeout_s=settings.llm_timeout_s, llm_extract=shortlist is not None)


def _wish_search(indexes: Indexes):
    def search(query: str, k: int) -> list[tuple[str, float]]:
        words = indexes.keywords.informative(query)
        if not words:  # nothing the catalog's documents would answer to
            return []
        return [(hit.id, hit.score) for hit in indexes.searcher.search(" ".join(words), k=k, mode="hybrid")]

    return search


def _scoring_config(settings: Settings) -> ScoringConfig:
    """The scorer's weights with the parts the settings turn off set to nothing."""
    default = ScoringConfig()
    return ScoringConfig(
        collaborative=settings.collaborative,
        content_weight=default.content_weight if settings.content_similarity else 0.0,
        seen_weight=default.seen_weight if settings.context_history else 0.0,
        mentioned_weight=default.mentioned_weight if settings.context_history else 0.0,
        popularity_recent_years=default.popularity_recent_years if settings.recent_popularity else None)
