"""Shared fixtures: `store_uri` runs a test on each store backend.

The embedded half always runs on a fresh directory. The Neo4j half runs when NEO4J_URI is set
(with NEO4J_USER / NEO4J_PASSWORD); it WIPES that database before each test, so point it at a
throwaway server, e.g. `docker run -p 7687:7687 -e NEO4J_AUTH=neo4j/testpassword neo4j:5`.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _wipe_neo4j(uri: str) -> None:
    from circuit_atlas.store import open_store

    with open_store(uri) as store:
        store.execute("MATCH (n) DETACH DELETE n")


@pytest.fixture(params=["embedded", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def store_uri(request, tmp_path) -> str:
    """A store URI with the schema and nothing else: a temporary directory, or NEO4J_URI wiped."""
    if request.param == "embedded":
        return str(tmp_path / "atlas.db")
    uri = os.environ.get("NEO4J_URI")
    if not uri:
        pytest.skip("NEO4J_URI is not set: no Neo4j server to test against (the tests wipe it; use a throwaway one)")
    _wipe_neo4j(uri)
    return uri


@pytest.fixture
def cli_env() -> dict:
    """Environment for `[sys.executable, "-m", "circuit_atlas", ...]` subprocesses run from the repo."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


@pytest.fixture
def python() -> str:
    return sys.executable
