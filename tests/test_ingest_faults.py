"""Ingest under hostile input and faults: a file that breaks a parser fails alone; a full disk is reported
once, with its real cause, and leaves the store as it was."""
from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from circuit_atlas.ingest import ingest_paths
from circuit_atlas.ingest import formats
from circuit_atlas.store import open_store
from tests.conftest import REPO
from tests.test_store import counts

FIXTURES = sorted((REPO / "tests/fixtures/formats/real").glob("*.json.gz"))


def ingest_cli(store: str, *args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "circuit_atlas", "--store", store, "ingest", "-q", *args],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)


@pytest.fixture
def hostile(tmp_path) -> dict[str, Path]:
    """Files that break naive readers, beside nothing else."""
    d = tmp_path / "hostile"
    d.mkdir()
    files = {"deep-array": d / "deep-array.json", "deep-nodes": d / "deep-nodes.json",
             "deep-metadata": d / "deep-metadata.json"}
    files["deep-array"].write_text("[" * 100_000 + "]" * 100_000)
    files["deep-nodes"].write_text('{"metadata": {}, "nodes": ' + "[" * 100_000 + "]" * 100_000 + ', "links": []}')
    # a real graph whose metadata holds a value 1,000 deep: orjson parses it, but it cannot be stored as JSON
    text = gzip.decompress(FIXTURES[0].read_bytes()).decode()
    files["deep-metadata"].write_text(text.replace('"metadata": {', '"metadata": {"deep": ' + "[" * 1000 + "]" * 1000
                                                   + ", ", 1).replace('"metadata":{', '"metadata":{"deep": '
                                                   + "[" * 1000 + "]" * 1000 + ", ", 1))
    return files


@pytest.mark.parametrize("parser", ["orjson", "stdlib"])
def test_a_file_that_breaks_the_parser_fails_alone(tmp_path, hostile, parser, monkeypatch):
    if parser == "stdlib":
        monkeypatch.setattr(formats, "orjson", None)     # the fallback, whose recursion overflows
    uri = str(tmp_path / "atlas.db")
    logged = []
    report = ingest_paths(uri, [hostile["deep-array"], *FIXTURES, hostile["deep-nodes"]], log=logged.append)
    assert report.new == len(FIXTURES) and report.present == 0
    assert [f for f, _ in report.failed] == [str(hostile["deep-array"]), str(hostile["deep-nodes"])]
    assert all("nested" in problem for _, problem in report.failed), report.failed
    assert logged == [f"error: {problem}" for _, problem in report.failed]
    assert "2 failed" in report.summary()


def test_a_graph_the_store_cannot_take_fails_alone(tmp_path, hostile):
    """The batch fails on one graph (not with a StoreError): it is retried graph by graph."""
    uri = str(tmp_path / "atlas.db")
    report = ingest_paths(uri, [hostile["deep-metadata"], *FIXTURES[1:]], log=lambda line: None)
    assert report.new == len(FIXTURES) - 1
    assert [f for f, _ in report.failed] == [str(hostile["deep-metadata"])]
    assert "cannot store graph" in report.failed[0][1] and "Recursion" in report.failed[0][1]
    with open_store(uri, read_only=True) as store:
        assert counts(store)["graphs"] == len(FIXTURES) - 1


def test_any_exception_while_reading_fails_that_file_alone(tmp_path, monkeypatch):
    real = formats.read_graph_file

    def flaky(path, **kw):
        if Path(path) == FIXTURES[1]:
            raise MemoryError("planted: out of memory while reading")
        return real(path, **kw)
    monkeypatch.setattr(formats, "read_graph_file", flaky)
    report = ingest_paths(str(tmp_path / "atlas.db"), FIXTURES, log=lambda line: None)
    assert report.new == len(FIXTURES) - 1
    assert report.failed == [(str(FIXTURES[1]), f"{FIXTURES[1]}: cannot read: unexpected MemoryError: "
                                                "planted: out of memory while reading")]


def test_the_cli_reports_a_deep_file_in_one_line_and_loads_the_rest(tmp_path, hostile, cli_env):
    result = ingest_cli(str(tmp_path / "atlas.db"), str(hostile["deep-array"]), *map(str, FIXTURES), env=cli_env)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines() == [f"error: {hostile['deep-array']}: JSON nested deeper than 1024 levels "
                                          "(depth limit exceeded: line 1 column 1026 (char 1025))"]
    assert f"{len(FIXTURES)} new graphs, 0 already present, 1 failed" in result.stdout


# ------------------------------------------------------------------------------------------- full disk

FULL_DISK_DRIVER = r"""
import json, subprocess, sys
from circuit_atlas.store import open_store
from tests.test_store import counts
mnt, small, fixtures, big = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4]
CLI = [sys.executable, "-m", "circuit_atlas"]
# The engine's own failure: the free-space check is switched off, so the disk fills up inside a COMMIT.
UNGUARDED = [sys.executable, "-c", "import sys, circuit_atlas.store.embedded as e; e.space_needed = lambda n: 0; "
             "from circuit_atlas.cli import main; sys.argv[0] = 'circuit-atlas'; main()"]
def run(cmd, store, *args):
    r = subprocess.run([*cmd, "--store", store, *args], capture_output=True, text=True, timeout=300)
    return {"rc": r.returncode, "out": r.stdout, "err": r.stderr}
def state(store):
    with open_store(store, read_only=False) as s:    # read-write: recovers what a failed write left
        return counts(s)
def mount(where, size, remount=False):
    subprocess.run(["mount", *(["-o", f"remount,size={size}", where] if remount else
                               ["-t", "tmpfs", "-o", f"size={size}", "tmpfs", where])], check=True)
store = mnt + "/atlas.db"
mount(mnt, "35m")   # the fixtures' store takes ~22 MB (the aggregate tables' pages included): ~13 MB left
out = {"first": run(CLI, store, "ingest", "-q", *fixtures)}
out["before"] = state(store)
out["guard"] = run(CLI, store, "ingest", "-q", big)
out["engine"] = run(UNGUARDED, store, "ingest", "-q", big)      # fails inside COMMIT
mount(mnt, "400m", remount=True)
out["after"] = state(store)
out["rerun"] = run(CLI, store, "ingest", "-q", big)
# a new store on a 7 MB disk: the engine loses its transaction in the failed COMMIT ("Invalid transaction
# type to rollback"), and closing it would abort the process
mount(small, "7m")
out["fresh"] = run(UNGUARDED, small + "/atlas.db", "ingest", "-q", *fixtures)
mount(small, "400m", remount=True)
out["fresh_after"] = state(small + "/atlas.db")
print(json.dumps(out))
"""


def _namespace_runner(probe_dir: Path) -> list[str] | None:
    """A command prefix that runs its command in a private mount namespace where it may mount a
    tmpfs (root: unshare -m; others: unshare -rm, a user namespace), or None where neither works.
    The mounts vanish with the namespace: nothing to clean up, nothing seen by other processes."""
    if not sys.platform.startswith("linux") or not shutil.which("unshare"):
        return None
    for prefix in (["unshare", "-m"], ["unshare", "-rm"]):
        probe = subprocess.run([*prefix, "mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe_dir)],
                               capture_output=True)
        if probe.returncode == 0:
            return prefix
    return None


def _synthetic_files(directory: Path, n: int) -> None:
    """`n` synthetic graph files of ~20k edges, made possible: the synthetic graphs' random edges also run
    backwards, and their logit probabilities sum past 1, which the reader refuses."""
    import numpy as np

    from circuit_atlas.ingest.write import write_graph_json
    from circuit_atlas.synthetic import synthetic_graph

    directory.mkdir()
    for i in range(n):
        g = synthetic_graph(i, n_nodes=2000, n_edges=80_000)
        for node in g.nodes:
            if node.kind == "logit":  # circuit-tracer's JSON puts logits at layer n_layers + 1
                node.node_id = f"{g.n_layers + 1}_{node.token_id}_{node.pos}"
                node.logit_prob = 0.05
        layer, pos = (np.array([getattr(x, a) for x in g.nodes]) for a in ("layer", "pos"))
        kind = np.array([x.kind for x in g.nodes])
        s, t = g.edge_source, g.edge_target
        keep = (layer[s] < layer[t]) & (pos[s] <= pos[t]) & (kind[t] != "error")
        g.edge_source, g.edge_target, g.edge_weight = s[keep], t[keep], g.edge_weight[keep]
        write_graph_json(g, directory / f"g{i}.json")


@pytest.mark.slow
def test_full_disk_is_reported_once_and_leaves_the_store_as_it_was(tmp_path, cli_env):
    mnt, small, big = tmp_path / "mnt", tmp_path / "small", tmp_path / "big"
    mnt.mkdir()
    small.mkdir()
    runner = _namespace_runner(mnt)
    if runner is None:
        pytest.skip("cannot mount a small tmpfs here (needs Linux and `unshare -m` or `unshare -rm`)")
    _synthetic_files(big, 10)                       # ~200k edges: ~10 MB of rows, more than the disk has left
    result = subprocess.run([*runner, sys.executable, "-c", FULL_DISK_DRIVER, str(mnt), str(small),
                             ",".join(map(str, FIXTURES)), str(big)],
                            capture_output=True, text=True, cwd=REPO, env=cli_env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["first"]["rc"] == 0, out["first"]
    for case, cause, n in [("guard", "not enough free space", 10), ("engine", "No space left on device", 10),
                           ("fresh", "No space left on device", len(FIXTURES))]:
        r = out[case]
        said = r["out"] + r["err"]
        assert r["rc"] == 1, (case, r)              # not 134 (abort) or 139 (segfault)
        assert "Traceback" not in said and said.count(cause) == 1, (case, said)
        assert f"Stopped early ({n} files not stored)" in r["out"], (case, r["out"])
        assert "0 new graphs, 0 already present" in r["out"], (case, r["out"])   # not "10 already present"
        assert len(said.splitlines()) == 2, (case, said)      # the summary and its stop line; no flood
    assert out["after"] == out["before"]            # nothing of the failed batch was stored, nothing lost
    assert out["rerun"]["rc"] == 0 and "10 new graphs, 0 already present" in out["rerun"]["out"], out["rerun"]
    # the failed commit of a new store is stored whole or not at all
    assert out["fresh_after"] in (out["before"], dict.fromkeys(out["before"], 0)), out["fresh_after"]
