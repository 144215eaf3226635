"""Settings: one place that reads the environment, so no module reads os.environ on its own.

Precedence: explicit argument (CLI flag) > environment variable > config file > default.
The config file is TOML at $CIRCUIT_ATLAS_CONFIG or ~/.config/circuit-atlas/config.toml, with the
same names as the variables below in lower case without the prefix, e.g. `store = "bolt://..."`.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_STORE = "./atlas.db"
DEFAULT_LOCK_TIMEOUT_S = 60.0   # how long an embedded-store open waits while another process holds it


def _config_file() -> dict:
    path = Path(os.environ.get("CIRCUIT_ATLAS_CONFIG", Path.home() / ".config/circuit-atlas/config.toml"))
    if path.is_file():
        with path.open("rb") as f:
            return tomllib.load(f)
    return {}


def lookup(name: str, default: str | None = None) -> str | None:
    """CIRCUIT_ATLAS_<NAME> or NEO4J_<...> from the environment, else the config file, else default."""
    for var in (f"CIRCUIT_ATLAS_{name.upper()}", name.upper()):
        if var in os.environ:
            return os.environ[var]
    return _config_file().get(name.lower(), default)


@dataclass(frozen=True)
class Settings:
    store: str            # a path (embedded store) or bolt:// / neo4j:// URI
    neo4j_user: str
    neo4j_password: str
    neo4j_database: str | None
    redis_url: str        # Celery broker and result backend
    artifacts: Path       # where traced graphs are persisted before ingest
    embedded_engine: str = "kuzu"   # kuzu | real_ladybug: the embedded store's engine (docs/store.md)
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S   # every embedded-store open waits this long for a lock

    @classmethod
    def load(cls, store: str | None = None, lock_timeout_s: float | None = None) -> "Settings":
        return cls(
            store=store or lookup("store") or DEFAULT_STORE,
            neo4j_user=lookup("neo4j_user", "neo4j"),
            neo4j_password=lookup("neo4j_password", ""),
            neo4j_database=lookup("neo4j_database"),
            redis_url=lookup("redis_url", "redis://127.0.0.1:6379/0"),
            artifacts=Path(lookup("artifacts", "./atlas-artifacts")),
            embedded_engine=lookup("embedded_engine", "kuzu"),
            lock_timeout_s=lock_timeout_s if lock_timeout_s is not None else _seconds("lock_timeout"),
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
