"""Running a test on both store backends: `BACKENDS` to parametrize with, `empty_store` to get one.

The Neo4j backend is the test session's one server (the `neo4j_server` fixture), and Neo4j Community
has one user database: the fixture that wipes it holds it until its own teardown, and a second
fixture asking for it meanwhile (say a function-scoped store inside a module-scoped corpus) is an
error, not a silent wipe of the other's data.
"""
from __future__ import annotations

from pathlib import Path

import pytest

BACKENDS = ("embedded", pytest.param("neo4j", marks=pytest.mark.neo4j))
# (store_uri, bulk) for a test of every write path: the embedded store's bulk COPY and statement paths,
# and Neo4j's one path (bulk None): `@pytest.mark.parametrize("store_uri, bulk", WRITE_PATHS, indirect=["store_uri"])`
WRITE_PATHS = (pytest.param("embedded", True, id="embedded-bulk"),
               pytest.param("embedded", False, id="embedded-statements"),
               pytest.param("neo4j", None, id="neo4j", marks=pytest.mark.neo4j))

_holder: list[str] = []          # who holds the Neo4j database now (at most one)


def wipe_neo4j(uri: str) -> None:
    """Delete every node and relationship; keep (or create) the schema's constraints and indexes."""
    import neo4j

    from circuit_atlas.settings import Settings
    from circuit_atlas.store import open_store

    s = Settings.load(store=uri)
    with neo4j.GraphDatabase.driver(uri, auth=(s.neo4j_user, s.neo4j_password)) as driver:
        with driver.session(database=s.neo4j_database) as session:   # auto-commit: batches of deletes
            session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()
    with open_store(uri):                     # creates the schema (constraints, indexes) if new; after the
        pass                                  # delete: a test may leave a layout a read-write open refuses


def empty_store(request: pytest.FixtureRequest, backend: str, tmp_dir: Path) -> str:
    """The URI of an empty store on `backend`, for the fixture or test behind `request`.

    embedded: a new directory under `tmp_dir`. neo4j: the session's server, wiped, and held by the
    requester until its teardown.
    """
    if backend == "embedded":
        return str(Path(tmp_dir) / "atlas.db")
    uri = request.getfixturevalue("neo4j_server")
    me = f"{request.node.nodeid} ({request.fixturename or 'test'}, {request.scope} scope)"
    if _holder:
        raise RuntimeError(f"the Neo4j test database is held by {_holder[0]}; {me} cannot wipe it meanwhile. "
                           "Give the two their stores at the same scope, or one of them the embedded backend.")
    _holder.append(me)
    request.addfinalizer(_holder.clear)
    wipe_neo4j(uri)
    return uri
