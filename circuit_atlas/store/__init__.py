"""The graph store: one interface over an embedded Cypher database (default) and Neo4j.

    from circuit_atlas.store import open_store
    with open_store("atlas.db") as store:             # a file: embedded; bolt:// or neo4j://: Neo4j
        store.add_graph(graph)                        # True if stored now, False if already there
        store.query("MATCH (g:Graph) RETURN g.slug AS slug")   # guarded read-only; time, rows, memory caps

Schema: schema.py. Statements: statements.py. Backends: embedded.py, neo4j.py. Guide: docs/store.md.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from circuit_atlas.settings import Settings
from circuit_atlas.store.base import Store
from circuit_atlas.store.errors import (CypherError, ForbiddenQueryError, GraphNotFoundError, QueryLimitError,
                                        QueryMemoryError, QueryTimeoutError, ReadOnlyQueryError, ResultTooLargeError,
                                        StoreError, StoreIOError, StoreLockedError, TooManyRowsError)
from circuit_atlas.store.limits import QueryLimits
from circuit_atlas.store.statements import Statement, all_statements

NEO4J_SCHEMES = ("bolt://", "bolt+s://", "bolt+ssc://", "neo4j://", "neo4j+s://", "neo4j+ssc://")


def is_neo4j_uri(uri: str) -> bool:
    return str(uri).startswith(NEO4J_SCHEMES)


def connect(store: str | Settings, read_only: bool = False, **options) -> Store:
    """Open a store without a `with` block; call .close() when done.

    `store`: the process's Settings (read once, passed down: its store URI, Neo4j credentials, embedded
    engine and lock timeout), or a bare URI, for which the settings are read now. Embedded options
    (keywords, None = the setting's): lock_timeout_s, engine, bulk — see store.embedded.EmbeddedOptions."""
    settings = store if isinstance(store, Settings) else Settings.load(store=str(store))
    uri = str(settings.store)
    if is_neo4j_uri(uri):
        from circuit_atlas.store.neo4j import Neo4jBackend
        return Store(Neo4jBackend(uri, read_only, settings), uri, read_only)
    from circuit_atlas.store.embedded import EmbeddedBackend, EmbeddedOptions
    opts = {"lock_timeout_s": settings.lock_timeout_s, "engine": settings.embedded_engine,
            **{k: v for k, v in options.items() if v is not None}}
    return Store(EmbeddedBackend(uri, read_only, EmbeddedOptions(**opts)), uri, read_only)


@contextmanager
def open_store(uri: str | Settings, read_only: bool = False, **options) -> Iterator[Store]:
    """The store at `uri` (a file path or a Neo4j URI, or the Settings naming it: see `connect`), closed on exit.

    read_only=True opens the database read-only: writes are refused by the database itself.
    Embedded options (keywords): lock_timeout_s, engine, bulk — see store.embedded.EmbeddedOptions.
    """
    store = connect(uri, read_only, **options)
    try:
        yield store
    finally:
        store.close()


__all__ = ["open_store", "connect", "Store", "StoreError", "StoreIOError", "StoreLockedError", "ReadOnlyQueryError",
           "QueryTimeoutError", "TooManyRowsError", "CypherError", "GraphNotFoundError", "Statement",
           "all_statements", "is_neo4j_uri", "ForbiddenQueryError", "QueryLimitError",
           "QueryMemoryError", "ResultTooLargeError", "QueryLimits"]
