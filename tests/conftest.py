"""Shared fixtures: `store_uri` runs a test on each store backend.

The embedded half always runs on a fresh directory. The Neo4j half runs on a real Neo4j server:
the one at NEO4J_URI if set (with NEO4J_USER / NEO4J_PASSWORD; it WIPES that database before each
test, so point it at a throwaway server), else one this test session starts itself on loopback
(circuit_atlas.store.neo4j_server, the code behind scripts/neo4j.sh) and stops by its PID. A test
that needs Neo4j and cannot have it fails, saying why; `pytest -m "not neo4j"` leaves them out.
"""
from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import pytest

from tests.backends import BACKENDS, empty_store

REPO = Path(__file__).resolve().parents[1]


NEO4J_ENV = ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "CIRCUIT_ATLAS_NEO4J_USER", "CIRCUIT_ATLAS_NEO4J_PASSWORD")


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory):
    """The Bolt URI of a Neo4j server for this session: NEO4J_URI if set, else one started here.

    A started server gets a random password; NEO4J_URI / NEO4J_USER / NEO4J_PASSWORD point at it for
    the session (subprocesses such as CLI runs and workers inherit them). Fails, with the reason,
    when no server can be had: a Neo4j test never silently skips.
    """
    if os.environ.get("NEO4J_URI"):
        yield os.environ["NEO4J_URI"]
        return
    from circuit_atlas.settings import lookup
    from circuit_atlas.store import neo4j_server

    password = lookup("neo4j_password") or secrets.token_hex(12)
    home = tmp_path_factory.mktemp("neo4j")
    try:
        server = neo4j_server.start(home, password, log=lambda msg: None)
    except neo4j_server.Neo4jServerError as e:
        pytest.fail(f"this test needs Neo4j, and no server could be started: {e}", pytrace=False)
    saved = {name: os.environ.get(name) for name in NEO4J_ENV}
    os.environ.update(NEO4J_URI=server.uri, NEO4J_USER=server.user, NEO4J_PASSWORD=password,
                      CIRCUIT_ATLAS_NEO4J_USER=server.user, CIRCUIT_ATLAS_NEO4J_PASSWORD=password)
    try:
        yield server.uri
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        neo4j_server.stop(home, grace_s=30)


@pytest.fixture(params=BACKENDS)
def store_uri(request, tmp_path) -> str:
    """A store URI with the schema and nothing else: a temporary directory, or a wiped Neo4j."""
    return empty_store(request, request.param, tmp_path)


@pytest.fixture
def cli_env() -> dict:
    """Environment for `[sys.executable, "-m", "circuit_atlas", ...]` subprocesses run from the repo."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


@pytest.fixture
def python() -> str:
    return sys.executable
