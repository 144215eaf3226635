"""The embedded store is one file (kuzu 0.11.3). A path that is not a store is refused in one line and
left exactly as it was: the engine would initialise an empty file as a new store."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from circuit_atlas.store import StoreError, open_store
from tests.conftest import REPO

GRAPH = REPO / "tests/fixtures/formats/real/123-gemma-2-2b-clt-hp.json.gz"


def snapshot(folder: Path) -> dict:
    """Every file under `folder` with its size, mtime and content hash."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns,
                                         hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


NOT_A_STORE = {
    "empty-file": (lambda p: p.write_bytes(b""), r"is an empty file, not a store; nothing was changed"),
    "directory": (lambda p: p.mkdir(), r"is a directory, not a store: the embedded store is a single file"),
    "directory-with-files": (lambda p: (p.mkdir(), (p / "catalog.kz").write_bytes(b"KUZU old")),
                             r"is a directory, not a store"),
    "random-bytes": (lambda p: p.write_bytes(os.urandom(50_000)), r"is not a store \(not a kuzu database file"),
    "text": (lambda p: p.write_text("graph,notes\n"), r"is not a store \(not a kuzu database file: it starts with "
                                                      r"b'graph,no'\)"),
}


@pytest.mark.parametrize("case", NOT_A_STORE, ids=list(NOT_A_STORE))
def test_a_path_that_is_not_a_store_is_refused_untouched(tmp_path, case, cli_env):
    make, message = NOT_A_STORE[case]
    path = tmp_path / "atlas.db"
    make(path)
    before = snapshot(tmp_path)
    for read_only in (True, False):
        with pytest.raises(StoreError, match=message):
            with open_store(str(path), read_only=read_only):
                pass
    for args in (["ingest", "-q", str(GRAPH)], ["cypher", "MATCH (g:Graph) RETURN count(g) AS n"], ["check"]):
        result = subprocess.run([sys.executable, "-m", "circuit_atlas", "--store", str(path), *args],
                                capture_output=True, text=True, env=cli_env, cwd=REPO, timeout=120)
        assert result.returncode == 1 and result.stdout == "", (args, result)
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"Error: {path} is "), (args, result.stderr)
    assert snapshot(tmp_path) == before                       # nothing created, written or removed


def test_a_store_in_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(StoreError, match=r"cannot create a store at .*: the folder .*/missing does not exist"):
        with open_store(str(tmp_path / "missing" / "atlas.db")):
            pass
    assert not (tmp_path / "missing").exists()


def test_the_embedded_store_is_one_file(tmp_path):
    from circuit_atlas.ingest import ingest_paths

    path = tmp_path / "atlas.db"
    assert ingest_paths(str(path), [GRAPH], log=lambda line: None).new == 1
    assert [p.name for p in tmp_path.iterdir()] == ["atlas.db"] and path.is_file()
    assert path.read_bytes()[:4] == b"KUZU"
    with open_store(str(path), read_only=True) as store:      # and it opens again as a store
        assert store.query("MATCH (g:Graph) RETURN count(g) AS n") == [{"n": 1}]
