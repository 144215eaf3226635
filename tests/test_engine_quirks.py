"""The embedded engine's quirks stay inside the store: callers see plain values and engine-neutral errors."""
from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal

import pytest

from circuit_atlas.store import open_store
from circuit_atlas.store.errors import UnknownLabelError
from circuit_atlas.store.rows import plain_value
from tests.conftest import REPO


def test_engine_numbers_become_plain(tmp_path):
    with open_store(str(tmp_path / "s.db")) as store:
        raw = store.query("UNWIND [1, 2, 40] AS x RETURN sum(x) AS s, [sum(x)] AS l, {m: sum(x)} AS m")[0]
    assert isinstance(raw["s"], Decimal)                   # the engine's own type for a sum of integers
    plain = plain_value(raw)
    assert plain == {"s": 43, "l": [43], "m": {"m": 43}}
    assert type(plain["s"]) is int and type(plain["l"][0]) is int and type(plain["m"]["m"]) is int
    assert plain_value(Decimal("2.5")) == 2.5 and type(plain_value(Decimal("2.5"))) is float


def test_a_store_made_before_audits_says_so(tmp_path):
    import kuzu

    path = tmp_path / "old.db"
    db = kuzu.Database(str(path))                          # a store with graphs only, no Audit table
    kuzu.Connection(db).execute("CREATE NODE TABLE Graph(id STRING, PRIMARY KEY(id))")
    db.close()
    with open_store(str(path), read_only=True) as store:
        with pytest.raises(UnknownLabelError, match="Audit"):
            store.query("MATCH (a:Audit) RETURN a.id AS id")
    env = {**os.environ, "PYTHONPATH": str(REPO), "CIRCUIT_ATLAS_STORE": str(path)}
    out = subprocess.run([sys.executable, "-m", "circuit_atlas", "audit", "list"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    assert f"no audits in {path} yet" in out.stderr
