"""Load graph files (circuit-tracer / Neuronpedia JSON and .pt) into the graph store.

    from circuit_atlas.ingest import ingest_paths
    report = ingest_paths("atlas.db", ["graphs/", "more/*.json"], tags={"set": "capitals"})
    print(report.summary())

Phases, per batch of files: read and parse (no store lock held), then one store open that adds the
batch's graphs. On the embedded store a batch is ONE transaction: a crash (even kill -9) loses whole
graphs of the unfinished batch, never part of one; the next run adds them (graph ids are content
hashes, so a re-run skips what is stored). Neo4j commits graph by graph.

Tags: a graph's own tags (from its file), then the manifest's for that file, then `tags` (later wins
for the same key). Re-ingesting a stored graph with new tags adds the tags; tags are never removed.
"""
from __future__ import annotations

import csv
import glob
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

GRAPH_SUFFIXES = (".json", ".json.gz", ".pt", ".pt.gz")
SKIPPED_SHOWN = 5                # the summary names this many skipped (or unnamed) files


class ManifestError(ValueError):
    """A manifest file that cannot be used; the message names the file and line."""


@dataclass
class IngestOptions:
    batch_edges: int = 16_000_000    # a batch (one transaction, one store open) closes past this many edges ...
    batch_graphs: int = 2000         # ... or this many graphs: bounds memory (~2 GB) and the work a crash loses
    # Fewer, larger commits: the embedded engine's commit cost grows with the store, so 16M-edge batches
    # store ~1.3x the edges/s of 4M-edge ones (bench/ingest.py --batch-edges).
    progress: bool = True            # tqdm bar on stderr
    lock_timeout_s: float | None = None  # embedded: wait this long for another process holding the store;
                                         # None: Settings.lock_timeout_s (--lock-timeout, default 60 s)


@dataclass
class IngestReport:
    """What a run did; `summary()` says it in one paragraph."""
    store: str
    new: int = 0                                            # graphs stored by this run
    present: int = 0                                        # graphs found already stored (tags merged)
    failed: list[tuple[str, str]] = field(default_factory=list)   # (file, one-line problem)
    skipped: list[str] = field(default_factory=list)        # files that are not graph files
    n_files: int = 0                                        # graph files found in the paths given
    nodes: int = 0                                          # nodes / edges of the new graphs
    edges: int = 0
    seconds: float = 0.0
    graph_ids: dict[str, str] = field(default_factory=dict)  # file -> graph id (stored or present)
    stopped: str = ""                # why the run stopped early: the store itself failed (full disk, lock, ...)
    not_stored: int = 0              # graph files left unstored because the run stopped
    unnamed: list[str] = field(default_factory=list)   # files whose graph names no transcoder set

    def summary(self) -> str:
        rate = f" ({self.edges / self.seconds:,.0f} edges/s)" if self.seconds > 0 and self.edges else ""
        lines = [f"{self.store}: {self.new} new graph{'s' * (self.new != 1)}, {self.present} already present, "
                 f"{len(self.failed)} failed; {self.nodes:,} nodes and {self.edges:,} edges added "
                 f"in {self.seconds:.1f} s{rate}."]
        if self.stopped:
            lines.append(f"Stopped early ({self.not_stored} file{'s' * (self.not_stored != 1)} not stored): "
                         f"{self.stopped}")
        if not self.n_files:
            lines.append(f"No graph files found in the paths given (looked for {', '.join(GRAPH_SUFFIXES)}).")
        if self.unnamed:
            one = len(self.unnamed) == 1
            lines.append(f"{len(self.unnamed)} graph{'' if one else 's'} without a transcoder set (no metadata.scan): "
                         f"{'its' if one else 'their'} features meet those of every other such graph, whatever "
                         f"the model; `ingest --transcoders NAME` names the set: {_first_few(self.unnamed)}.")
        if self.skipped:
            lines.append(f"{len(self.skipped)} file{'s' * (len(self.skipped) != 1)} skipped "
                         f"(not {', '.join(GRAPH_SUFFIXES)}): {_first_few(self.skipped)}.")
        return "\n".join(lines)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.stopped


def _first_few(files: list[str]) -> str:
    """The first SKIPPED_SHOWN names, and how many more."""
    more = len(files) - SKIPPED_SHOWN
    return ", ".join(files[:SKIPPED_SHOWN]) + (f", … ({more} more)" if more > 0 else "")


def is_graph_file(path: Path) -> bool:
    return path.name.lower().endswith(GRAPH_SUFFIXES)


def expand_paths(paths) -> tuple[list[Path], list[Path]]:
    """Files, folders (recursively) and globs -> (graph files, other files), each sorted, no repeats.
    A path that does not exist, or a glob that matches nothing, is kept as a graph file: reading it
    then reports the problem."""
    found: dict[Path, None] = {}
    for p in map(str, paths):
        matches = [Path(m) for m in sorted(glob.glob(p, recursive=True))] if glob.has_magic(p) else []
        matches = matches or [Path(p)]
        for m in matches:
            if m.is_dir():
                found.update(dict.fromkeys(sorted(f for f in m.rglob("*") if f.is_file())))
            else:
                found[m] = None
    graphs = [f for f in found if is_graph_file(f) or not f.exists()]
    return graphs, [f for f in found if f not in graphs]


def read_manifest(path) -> dict[Path, dict[str, str]]:
    """file -> tags. CSV: a `file` column and one column per tag key (empty cells ignored).
    JSONL: one object per line, {"file": ..., "tags": {...}} or {"file": ..., "<key>": "<value>", ...}.
    Relative file names are relative to the manifest's folder."""
    path = Path(path)
    base = path.parent
    rows: list[tuple[int, dict]] = []
    try:
        if path.suffix.lower() == ".csv":
            with path.open(newline="") as f:
                rows = list(enumerate(csv.DictReader(f), start=2))
        elif path.suffix.lower() in (".jsonl", ".ndjson"):
            for i, line in enumerate(path.read_text().splitlines(), start=1):
                if line.strip():
                    rows.append((i, json.loads(line)))
        else:
            raise ManifestError(f"{path}: a manifest must be .csv or .jsonl")
    except (OSError, json.JSONDecodeError, csv.Error) as e:
        raise ManifestError(f"{path}: cannot read manifest: {e}") from None
    out = {}
    for line, row in rows:
        if not isinstance(row, dict) or not row.get("file"):
            raise ManifestError(f"{path}:{line}: no 'file' value (columns: file, then one per tag key)")
        tags = row.get("tags") if isinstance(row.get("tags"), dict) else \
            {k: v for k, v in row.items() if k not in ("file", "tags")}
        out[(base / row["file"]).resolve()] = {str(k): str(v) for k, v in tags.items() if v not in (None, "")}
    return out


def ingest_paths(store, paths, tags: dict[str, str] | None = None, manifest=None,
                 options: IngestOptions | None = None, log=print, transcoders: str | None = None) -> IngestReport:
    """Ingest graph files into `store` (a URI, or the Settings naming it); bad files are reported (via
    `log` and in the report) and skipped, the others load. Returns an IngestReport. Raises StoreError, before reading
    any file, when the store cannot be opened at all (not a store, locked past the timeout); a store
    failure later (a full disk) stops the run instead: `report.stopped` says why. `transcoders` names
    the transcoder set of graphs whose files name none."""
    from tqdm import tqdm

    from circuit_atlas.settings import Settings
    from circuit_atlas.store import StoreError, open_store

    opts = options or IngestOptions()
    start = time.perf_counter()
    settings = store if isinstance(store, Settings) else Settings.load(store=str(store))   # read once per run
    files, others = expand_paths(paths)
    report = IngestReport(store=str(settings.store), skipped=[str(f) for f in others],
                          n_files=len(files))
    per_file_tags = read_manifest(manifest) if manifest else {}
    if not files:                             # nothing to store: no store is opened, and none is made
        return report
    with open_store(settings, lock_timeout_s=opts.lock_timeout_s):
        pass                                  # a path that is not a store is refused now, before any file is read
    batch: list[tuple[Path, object]] = []
    bar = tqdm(files, unit="file", disable=not opts.progress, desc="ingest")
    try:
        for done, path in enumerate(bar, start=1):
            graph = _read(path, report, per_file_tags.get(path.resolve(), {}) | (tags or {}), transcoders, log)
            if graph is None:
                continue
            batch.append((path, graph))
            if len(batch) >= opts.batch_graphs or sum(g.n_edges for _, g in batch) >= opts.batch_edges:
                _store_batch(settings, batch, report, opts, log)
                batch = []
            bar.set_postfix(new=report.new, present=report.present, failed=len(report.failed))
        done = len(files)
        if batch:
            _store_batch(settings, batch, report, opts, log)
            batch = []
    except StoreError as e:                   # the store itself failed: every later batch would fail the same way
        report.stopped = str(e).splitlines()[0]           # said once, in the summary
        report.not_stored = len([p for p, _ in batch if str(p) not in report.graph_ids]) + len(files) - done
    bar.set_postfix(new=report.new, present=report.present, failed=len(report.failed))
    bar.close()
    report.seconds = time.perf_counter() - start
    return report


def _read(path: Path, report: IngestReport, tags: dict[str, str], transcoders: str | None, log):
    """One file's graph with `tags` added, or None when it cannot be read (reported). A graph that names
    no transcoder set gets `transcoders`, else the report notes it: its features would be keyed under
    the empty set and meet those of every other such graph, whatever their model."""
    from circuit_atlas.ingest.formats import GraphFileError, read_graph_file
    from circuit_atlas.ingest.names import model_from_scan
    try:
        graph = read_graph_file(path)
    except GraphFileError as e:
        _fail(report, path, str(e), log)
        return None
    except Exception as e:            # a reader bug or a resource limit: this file fails, the rest load
        _fail(report, path, f"cannot read: unexpected {_one_line(e)}", log)
        return None
    if not graph.transcoder_set:
        if transcoders:
            graph = replace(graph, transcoder_set=transcoders,   # and so a new id
                            model=graph.model or model_from_scan(None, transcoders))
        else:
            report.unnamed.append(str(path))
    graph.tags.update(tags)
    return graph


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:300]}" if text else type(e).__name__


def _fail(report: IngestReport, path: Path, message: str, log) -> None:
    message = message if message.startswith(str(path)) else f"{path}: {message}"
    report.failed.append((str(path), message))
    log(f"error: {message}")


def store_graphs(store, graphs, reraise: tuple[type[BaseException], ...] = ()):
    """Add `graphs` to an open store: all in one transaction, and if that fails as a whole, one at a
    time, so that one bad graph fails alone. Yields (graph, outcome) in order; outcome is True (new),
    False (stored already) or the exception that graph failed with. The one ingest path: `ingest_paths`
    and the ingest workers both store through it.

    A failure of the store itself (StoreIOError: it cannot be opened, a full disk), or one of
    `reraise` (a worker's transient errors, retried later), is raised: one at a time would only repeat it."""
    from circuit_atlas.store import StoreIOError

    reraise = (StoreIOError, *reraise)
    try:
        stored = store.add_graphs(graphs)
    except reraise:
        raise
    except Exception:
        for graph in graphs:
            try:
                new = store.add_graph(graph)
            except reraise:
                raise
            except Exception as e:
                yield graph, e
            else:
                yield graph, new
        return
    yield from zip(graphs, stored)


def _store_batch(settings, batch, report: IngestReport, opts: IngestOptions, log) -> None:
    """Add a batch of (path, graph) in one store open (store_graphs), recording each in the report."""
    from circuit_atlas.store import open_store

    with open_store(settings, lock_timeout_s=opts.lock_timeout_s) as store:
        for (path, _), (graph, outcome) in zip(batch, store_graphs(store, [g for _, g in batch])):
            if isinstance(outcome, Exception):
                _fail(report, path, f"cannot store graph: {_one_line(outcome)}", log)
            else:
                _record(report, path, graph, outcome)


def _record(report: IngestReport, path: Path, graph, new: bool) -> None:
    report.graph_ids[str(path)] = graph.id
    if new:
        report.new += 1
        report.nodes += len(graph.nodes)
        report.edges += graph.n_edges
    else:
        report.present += 1


def import_paths(neo4j_home, paths, tags: dict[str, str] | None = None, manifest=None, *, overwrite: bool = False,
                 batch_graphs: int = 200, log=print, transcoders: str | None = None) -> IngestReport:
    """A first load into an empty Neo4j database, through `neo4j-admin database import` instead of
    Bolt (several times faster; see store/neo4j_import.py): the files are read as `ingest_paths`
    reads them, written as CSV beside the instance at `neo4j_home` (a folder of scripts/neo4j.sh,
    its server stopped), and imported; the CSV is removed afterwards. Raises Neo4jImportError when
    the database exists (unless `overwrite`) or the server runs: nothing is changed then."""
    import shutil
    import tempfile

    from circuit_atlas.store.neo4j_import import check_import_target, run_import, write_csv

    start = time.perf_counter()
    files, others = expand_paths(paths)
    report = IngestReport(store=f"neo4j-admin import into {neo4j_home}", skipped=[str(f) for f in others],
                          n_files=len(files))
    per_file_tags = read_manifest(manifest) if manifest else {}
    seen: dict[str, Path] = {}

    def batches():
        batch = []
        for path in files:
            graph = _read(path, report, per_file_tags.get(path.resolve(), {}) | (tags or {}), transcoders, log)
            if graph is None:
                continue
            if graph.id in seen:              # the same graph twice: one stored, the other "present"
                _record(report, path, graph, False)
                continue
            seen[graph.id] = path
            _record(report, path, graph, True)
            batch.append(graph)
            if len(batch) >= batch_graphs:
                yield batch
                batch = []
        if batch:
            yield batch

    check_import_target(neo4j_home, overwrite)          # before reading anything
    Path(neo4j_home).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="import-csv-", dir=neo4j_home))
    try:
        run_import(neo4j_home, write_csv(batches(), folder), overwrite=overwrite)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report.seconds = time.perf_counter() - start
    return report
