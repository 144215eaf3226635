"""Ingest: files -> store, idempotent, atomic per graph, bad files reported and skipped."""
from __future__ import annotations

import gzip
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from circuit_atlas.store import open_store
from circuit_atlas.ingest import expand_paths, ingest_paths, read_manifest
from circuit_atlas.ingest.formats import read_graph_file
from tests.conftest import REPO
from tests.test_store import counts, expected_counts

FIXTURES = REPO / "tests/fixtures/formats/real"


@pytest.fixture
def graph_dir(tmp_path) -> Path:
    """Real graph files (six models / exporters) in nested folders, plus a file that is not a graph."""
    d = tmp_path / "graphs"
    (d / "sub").mkdir(parents=True)
    files = sorted(FIXTURES.glob("*.json.gz"))
    for i, f in enumerate(files):
        shutil.copy(f, (d / "sub" if i % 2 else d) / f.name)
    (d / "README.txt").write_text("not a graph")
    return d


def ingest_cli(store_uri, *args, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "circuit_atlas", "--store", store_uri, "ingest", "-q", *args],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)


def test_ingest_stores_what_the_files_hold_and_only_once(store_uri, graph_dir):
    graphs = [read_graph_file(f) for f in expand_paths([graph_dir])[0]]
    report = ingest_paths(store_uri, [graph_dir], tags={"set": "fixtures"}, options=None, log=print)
    assert (report.new, report.present, report.failed) == (len(graphs), 0, [])
    assert report.skipped == [str(graph_dir / "README.txt")]
    assert report.edges == sum(g.n_edges for g in graphs)
    for g in graphs:
        g.tags["set"] = "fixtures"
    with open_store(store_uri, read_only=True) as store:
        assert counts(store) == expected_counts(graphs)
        before = counts(store)
    again = ingest_paths(store_uri, [graph_dir / "**/*.json.gz"], tags={"round": "2"})
    assert (again.new, again.present, again.edges) == (0, len(graphs), 0)
    with open_store(store_uri, read_only=True) as store:
        after = counts(store)
        assert store.query("MATCH (:Graph)-[:TAGGED]->(t:Tag {id: 'round=2'}) RETURN count(*) AS n") == \
            [{"n": len(graphs)}]
    assert after == {**before, "tags": before["tags"] + len(graphs)}


def test_export_and_reread_gives_the_same_graph(store_uri, graph_dir, tmp_path):
    from circuit_atlas.ingest.write import write_graph_json

    report = ingest_paths(store_uri, [graph_dir], options=None)
    with open_store(store_uri, read_only=True) as store:
        for file, gid in report.graph_ids.items():
            original = read_graph_file(file)
            out = write_graph_json(store.get_graph(gid), tmp_path / "out.json")
            reread = read_graph_file(out)
            assert reread.id == original.id == gid, file
            assert reread.extra == original.extra and reread.generator == original.generator, file


def test_manifest_tags(tmp_path, graph_dir):
    files = expand_paths([graph_dir])[0]
    (tmp_path / "m.csv").write_text("file,lang,concept\n" + f"{files[0]},fr,\n" + f"{files[1].relative_to(tmp_path)},en,x\n")
    (tmp_path / "m.jsonl").write_text(json.dumps({"file": str(files[0]), "tags": {"lang": "de"}}) + "\n")
    assert read_manifest(tmp_path / "m.csv") == {files[0].resolve(): {"lang": "fr"},
                                                 files[1].resolve(): {"lang": "en", "concept": "x"}}
    uri = str(tmp_path / "atlas.db")
    ingest_paths(uri, files[:2], manifest=tmp_path / "m.csv", tags={"set": "s"})
    ingest_paths(uri, files[:1], manifest=tmp_path / "m.jsonl")
    with open_store(uri, read_only=True) as store:
        rows = store.query("MATCH (g:Graph)-[:TAGGED]->(t:Tag) RETURN g.slug AS slug, t.id AS tag ORDER BY slug, tag")
    slug = {f: read_graph_file(f).slug for f in files[:2]}
    assert rows == sorted([{"slug": slug[files[0]], "tag": t} for t in ("lang=de", "lang=fr", "set=s")] +
                          [{"slug": slug[files[1]], "tag": t} for t in ("concept=x", "lang=en", "set=s")],
                          key=lambda r: (r["slug"], r["tag"]))


def test_the_summary_names_the_files_it_skipped(store_uri, graph_dir, cli_env):
    """A folder's other files are skipped, and the summary says which: the first five, then how many more.
    A folder with no graph file in it says so."""
    notes = sorted(graph_dir / f"notes-{i}.txt" for i in range(6))
    for note in notes:
        note.write_text("not a graph")
    (graph_dir / "empty").mkdir()
    nothing = ingest_cli(store_uri, str(graph_dir / "empty"), env=cli_env)
    assert "No graph files found in the paths given (looked for .json, .json.gz, .pt, .pt.gz)." \
        in nothing.stdout.splitlines(), nothing.stdout
    result = ingest_cli(store_uri, str(graph_dir), env=cli_env)
    assert result.returncode == 0, result.stderr
    assert "No graph files" not in result.stdout
    skipped = sorted([graph_dir / "README.txt", *notes], key=str)
    [line] = [line for line in result.stdout.splitlines() if "skipped" in line]
    assert line == (f"7 files skipped (not .json, .json.gz, .pt, .pt.gz): "
                    f"{', '.join(str(p) for p in skipped[:5])}, … (2 more).")


def test_a_graph_without_transcoder_set_is_named_or_said(tmp_path, cli_env):
    """A file naming no transcoder set would key its features under '' (shared by every such file,
    whatever the model): the summary says so, and --transcoders names the set."""
    d = json.loads(gzip.open(FIXTURES / "123-gemma-2-2b-clt-hp.json.gz").read())
    named = read_graph_file(FIXTURES / "123-gemma-2-2b-clt-hp.json.gz")
    d["metadata"].pop("scan")
    d["metadata"].pop("info", None)
    path = tmp_path / "noscan.json"
    path.write_text(json.dumps(d))
    store = str(tmp_path / "atlas.db")
    said = ingest_cli(store, str(path), env=cli_env)
    assert said.returncode == 0, said.stderr
    assert said.stdout.splitlines()[1] == (
        f"1 graph without a transcoder set (no metadata.scan): its features meet those of every other such "
        f"graph, whatever the model; `ingest --transcoders NAME` names the set: {path}.")
    fixed = ingest_cli(store, str(path), "--transcoders", named.transcoder_set, env=cli_env)
    assert fixed.returncode == 0 and len(fixed.stdout.splitlines()) == 1, fixed.stdout
    with open_store(store, read_only=True) as s:
        graphs = s.query("MATCH (g:Graph) RETURN g.model AS model, g.transcoder_set AS tc ORDER BY tc")
        keys = {r["key"] for r in s.query("MATCH (f:Feature) RETURN f.key AS key")}
    assert graphs == [{"model": "", "tc": ""}, {"model": named.model, "tc": named.transcoder_set}]
    want = {named.feature_key(n) for n in named.nodes if n.kind == "feature"}
    assert keys == want | {k.replace(named.transcoder_set, "", 1) for k in want}


def test_a_run_with_no_graph_file_makes_no_store(graph_dir, tmp_path, cli_env):
    """Ingesting an empty folder says so and leaves no store behind: a mistyped path makes no new file."""
    (graph_dir / "empty").mkdir()
    store = tmp_path / "new.db"
    result = ingest_cli(str(store), str(graph_dir / "empty"), env=cli_env)
    assert result.returncode == 0, result.stderr
    assert "No graph files found" in result.stdout
    assert not store.exists() and list(tmp_path.iterdir()) == [graph_dir]


def test_bad_files_are_reported_and_the_rest_load(store_uri, graph_dir, tmp_path, cli_env):
    files = expand_paths([graph_dir])[0]
    first = ingest_cli(store_uri, str(files[0]), env=cli_env)
    assert first.returncode == 0, first.stderr
    with open_store(store_uri, read_only=True) as store:
        before = counts(store)
    bad = tmp_path / "bad"
    bad.mkdir()
    text = gzip.decompress(files[1].read_bytes())
    (bad / "truncated.json").write_bytes(text[: len(text) // 2])
    (bad / "not-a-graph.json").write_text('{"hello": "world"}')
    (bad / "empty.json").write_text("")
    (bad / "garbage.pt").write_bytes(b"\x00not a torch file")
    result = ingest_cli(store_uri, str(bad), *map(str, files[1:]), env=cli_env)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert sorted(e.split(":")[1].strip() for e in errors) == sorted(str(p) for p in bad.iterdir())
    assert "4 failed" in result.stdout and f"{len(files) - 1} new graphs" in result.stdout
    graphs = [read_graph_file(f) for f in files]
    with open_store(store_uri, read_only=True) as store:
        after = counts(store)
    assert after == expected_counts(graphs) and after["graphs"] == before["graphs"] + len(files) - 1


KILL_SCRIPT = """
import sys, time
from circuit_atlas.store import open_store
from circuit_atlas.synthetic import synthetic_graph
small = synthetic_graph(1, n_nodes=100, n_edges=500)      # the batch holds two graphs: both or neither
graph = synthetic_graph(12345, n_nodes=4000, n_edges=int(sys.argv[2]), n_feature_ids=50_000)
print(graph.id, small.id, flush=True)
import kuzu
execute = kuzu.Connection.execute
def announced(self, query, *args, **kw):      # say where the writer is, so the test kills it there
    if query == "COMMIT" and sys.argv[3] == "pause-before-commit":
        print("paused", flush=True); time.sleep(600)       # frozen inside the transaction, after every COPY
    if str(query).startswith("COPY EFFECT") and sys.argv[3] == "during-copy":
        print("copying", flush=True)           # the test kills now: inside the COPY, or ...
        result = execute(self, query, *args, **kw)
        sys.stdin.readline()                   # ... after it, held before COMMIT (never told to go on)
        return result
    return execute(self, query, *args, **kw)
kuzu.Connection.execute = announced
with open_store(sys.argv[1]) as store:
    print("writing", flush=True)
    store.add_graphs([small, graph])
print("done", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("where", ["pause-before-commit", "during-copy"])
def test_kill_9_mid_graph_leaves_no_trace(tmp_path, cli_env, where):
    uri = str(tmp_path / "atlas.db")
    ingest_paths(uri, sorted(FIXTURES.glob("*.json.gz"))[:2])
    with open_store(uri, read_only=True) as store:
        before = counts(store)
    n_edges = 300_000 if where == "pause-before-commit" else 1_500_000
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, uri, str(n_edges), where], stdout=subprocess.PIPE,
                            stdin=subprocess.PIPE, text=True, env=cli_env, cwd=REPO)
    gid, small_gid = proc.stdout.readline().split()
    assert proc.stdout.readline().strip() == "writing"
    if where == "pause-before-commit":
        assert proc.stdout.readline().strip() == "paused"
    else:
        assert proc.stdout.readline().strip() == "copying"   # killed in the COPY of 1.5M edges, or held after it
    assert proc.poll() is None, "the writer finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with open_store(uri) as store:
        assert not store.has_graph(gid) and not store.has_graph(small_gid)
        assert store.query("MATCH (n:Node) WHERE n.gid IN $gids RETURN count(*) AS n", {"gids": [gid, small_gid]}) \
            == [{"n": 0}]
        assert counts(store) == before
    assert_check_passes(uri, cli_env)                  # every stored graph whole, its hash its id
    rerun = subprocess.run([sys.executable, "-c", KILL_SCRIPT, uri, str(n_edges), "run"], capture_output=True,
                           text=True, env=cli_env, cwd=REPO, timeout=300)
    assert rerun.stdout.split() == [gid, small_gid, "writing", "done"], rerun.stderr
    with open_store(uri, read_only=True) as store:
        assert store.has_graph(gid) and store.has_graph(small_gid)
        assert counts(store)["graphs"] == before["graphs"] + 2
    assert_check_passes(uri, cli_env)


def assert_check_passes(uri: str, env: dict) -> None:
    result = subprocess.run([sys.executable, "-m", "circuit_atlas", "--store", uri, "check", "-q"],
                            capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("no problems."), result.stdout + result.stderr


def test_manifest_and_tag_errors_name_the_problem(tmp_path, graph_dir, cli_env):
    (tmp_path / "m.csv").write_text("path,lang\nx.json,fr\n")
    result = ingest_cli(str(tmp_path / "atlas.db"), str(graph_dir), "--manifest", str(tmp_path / "m.csv"), env=cli_env)
    assert result.returncode == 1 and f"{tmp_path / 'm.csv'}:2: no 'file' value" in result.stderr
    result = ingest_cli(str(tmp_path / "atlas.db"), str(graph_dir), "--tag", "novalue", env=cli_env)
    assert result.returncode == 2 and "expected key=value" in result.stderr
    assert not (tmp_path / "atlas.db").exists()          # nothing was opened, let alone written


class _PickyStore:
    """A store that refuses one graph: a batch holding it fails whole, as the database's transaction does."""

    def __init__(self, refuse: str, io_error: bool = False):
        self.refuse, self.io_error, self.stored = refuse, io_error, []

    def add_graph(self, graph) -> bool:
        if graph == self.refuse:
            from circuit_atlas.store import StoreIOError
            raise (StoreIOError if self.io_error else ValueError)(f"cannot store {graph}")
        new = graph not in self.stored
        self.stored += [graph] * new
        return new

    def add_graphs(self, graphs) -> list[bool]:
        if self.refuse in graphs:
            self.add_graph(self.refuse)
        return [self.add_graph(g) for g in graphs]


def test_store_graphs_falls_back_to_one_graph_at_a_time():
    """ingest.store_graphs, the one path of ingest_paths and the ingest workers: a batch that fails is
    stored graph by graph, so the bad graph fails alone; a failure of the store itself stops it."""
    from circuit_atlas.ingest import store_graphs
    from circuit_atlas.store import StoreIOError

    store = _PickyStore(refuse="b")
    store.stored.append("c")
    outcomes = list(store_graphs(store, ["a", "b", "c", "d"]))
    assert [g for g, _ in outcomes] == ["a", "b", "c", "d"] and store.stored == ["c", "a", "d"]
    assert [o for g, o in outcomes if g != "b"] == [True, False, True]
    assert isinstance(dict(outcomes)["b"], ValueError)
    assert list(store_graphs(_PickyStore(refuse="x"), ["a", "b"])) == [("a", True), ("b", True)]   # one transaction
    with pytest.raises(StoreIOError):
        list(store_graphs(_PickyStore(refuse="b", io_error=True), ["a", "b", "c"]))
    with pytest.raises(ValueError):                       # a caller's transient error is raised, not recorded
        list(store_graphs(_PickyStore(refuse="b"), ["a", "b"], reraise=(ValueError,)))
