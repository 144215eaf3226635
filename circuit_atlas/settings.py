"""Settings: one place that reads the environment, so no module reads os.environ on its own.

Precedence: explicit argument (CLI flag) > environment variable > config file > default.
Environment names are CIRCUIT_ATLAS_<NAME> only (and the Neo4j ones also as NEO4J_USER,
NEO4J_PASSWORD, NEO4J_DATABASE). The config file is TOML at $CIRCUIT_ATLAS_CONFIG or
~/.config/circuit-atlas/config.toml, read once per process, with the same names in lower case
without the prefix, e.g. `store = "bolt://..."`. Every setting and its default: README, "Settings".
"""
from __future__ import annotations

import functools
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_STORE = "./atlas.db"
DEFAULT_LOCK_TIMEOUT_S = 60.0   # how long an embedded-store open waits while another process holds it
DEFAULT_ENGINE = "kuzu"         # the embedded store's engine (docs/store.md, "Engine choice")
DEFAULT_DEVICE = "cpu"          # torch device for tracing: workers, audits, `circuit-atlas trace`
# A user query's limits (store/limits.py QueryLimits, Store.query, `circuit-atlas cypher` flags):
DEFAULT_TIMEOUT_S = 60.0        # seconds from sending the query to its last row
DEFAULT_MAX_ROWS = 100_000      # rows returned at most
DEFAULT_MAX_MEMORY = "1G"       # memory of the embedded query process (its rows may take a quarter)


@functools.cache
def _read_config(path: Path) -> dict:
    if path.is_file():
        with path.open("rb") as f:
            return tomllib.load(f)
    return {}


def _config_file() -> dict:
    return _read_config(Path(os.environ.get("CIRCUIT_ATLAS_CONFIG", Path.home() / ".config/circuit-atlas/config.toml")))


def lookup(name: str, default: str | None = None) -> str | None:
    """CIRCUIT_ATLAS_<NAME> (or NEO4J_<...> for the neo4j_* names) from the environment, else the
    config file, else default."""
    names = [f"CIRCUIT_ATLAS_{name.upper()}"] + ([name.upper()] if name.lower().startswith("neo4j_") else [])
    for var in names:
        if var in os.environ:
            return os.environ[var]
    return _config_file().get(name.lower(), default)


@dataclass(frozen=True)
class Settings:
    """Every setting with its default (the one source: README's "Settings" table lists these)."""
    store: str = DEFAULT_STORE          # a path (embedded store) or bolt:// / neo4j:// URI
    neo4j_user: str = "neo4j"
    neo4j_password: str = ""
    neo4j_database: str | None = None   # None: the server's default database
    redis_url: str = "redis://127.0.0.1:6379/0"   # Celery broker and result backend
    artifacts: Path = Path("./atlas-artifacts")    # where traced graphs are persisted before ingest
    embedded_engine: str = DEFAULT_ENGINE   # kuzu | real_ladybug: the embedded store's engine (docs/store.md)
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S   # every embedded-store open waits this long for a lock
    device: str = DEFAULT_DEVICE        # torch device for tracing ("cuda", "cuda:1", ...)

    @classmethod
    def load(cls, store: str | None = None, lock_timeout_s: float | None = None) -> "Settings":
        d = cls()   # the defaults
        return cls(
            store=store or lookup("store") or d.store,
            neo4j_user=lookup("neo4j_user", d.neo4j_user),
            neo4j_password=lookup("neo4j_password", d.neo4j_password),
            neo4j_database=lookup("neo4j_database", d.neo4j_database),
            redis_url=lookup("redis_url", d.redis_url),
            artifacts=Path(lookup("artifacts", d.artifacts)),
            embedded_engine=lookup("embedded_engine", d.embedded_engine),
            lock_timeout_s=lock_timeout_s if lock_timeout_s is not None else _seconds("lock_timeout"),
            device=lookup("device", d.device),
        )


def _seconds(name: str) -> float:
    raw = lookup(name, DEFAULT_LOCK_TIMEOUT_S)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = -1.0
    if not value >= 0:
        raise ValueError(f"CIRCUIT_ATLAS_{name.upper()} (or `{name}` in the config file) is {raw!r}: "
                         "expected a number of seconds >= 0")
    return value
