"""Ingest throughput: the bulk path (COPY from Arrow, batched transactions) against a naive loader
that sends one MERGE per node and per edge, both measured in this run on the same store engine.

    PYTHONPATH=. python bench/ingest.py                       # Gemma-2-2B corpus + 1,000 x 10k synthetic
    PYTHONPATH=. python bench/ingest.py --synthetic 200 --naive-sample 2 --engine real_ladybug

Phases: (1) the 57 Gemma-2-2B graphs from ../shared (skipped with a note when absent): parse,
then store; (2) synthetic graphs generated in-process (generation not timed), stored in batches of
--batch-edges into a fresh store, then as many again into that store (the engine's commit cost grows
with the store, so the second figure is what a growing corpus sees); (3) the naive loader (one MERGE per edge: each auto-committed, then all of a graph in one
transaction) on --naive-edges edges of each of
--naive-sample synthetic graphs, extrapolated per edge. CPU seconds are printed next to wall seconds:
on a shared machine edges per CPU-second is the steadier figure.
Targets: >= 1M edges/s for the embedded bulk path; bulk >= 50x naive.

--realistic N: the realistic corpus (circuit_atlas.corpus, Gemma-2-2B-shaped graphs): N graphs into a
fresh store, then N more into it, once maintaining the cross-graph aggregates and once without
(the write path before them), each mode in its own process so that its peak memory (VmHWM) is its
own; prints edges/s, the with/without ratio, peak memory and the store's size on disk per million edges.
    PYTHONPATH=. python bench/ingest.py --realistic 1000            # both modes
    PYTHONPATH=. python bench/ingest.py --realistic 10000 --no-baseline
    PYTHONPATH=. python bench/ingest.py --realistic 1000 --no-baseline --compare-engine ladybug
    PYTHONPATH=. python bench/ingest.py --realistic 1000 --into /tmp/circuit-atlas-bench/queries-realistic-10000.db
(the last: 1,000 graphs into a copy of bench/queries.py's 10,000-graph store). Other work on the machine
slows both paths alike; the ratio is the robust figure.

With --store bolt://… (a Neo4j server; it is wiped first) the same graphs also go (4) through Bolt
(Store.add_graphs: a transaction per graph, columns as list parameters), beside the embedded figures,
with the portable statement path (UNWIND rows, MATCH endpoints by uid: base.write_with_statements) on
a sample as the Bolt baseline; and (5) through `neo4j-admin database import` (store/neo4j_import.py)
into a new instance folder, CSV writing and the importer timed apart. Targets: >= 200k edges/s
through Bolt, >= 1M edges/s for the import. --neo4j-dir (the server's scripts/neo4j.sh folder) adds
the server's own CPU seconds.

    PYTHONPATH=. python bench/ingest.py --store $NEO4J_URI --neo4j-dir .neo4j --synthetic 1000 --bolt-synthetic 200
    PYTHONPATH=. python bench/ingest.py --store $NEO4J_URI --neo4j-dir .neo4j --bolt-profile   # where Bolt's time goes
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

if not __package__:   # run as a file, bench/ is sys.path[0] and this file would shadow the ingest package
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from circuit_atlas.store import open_store
from circuit_atlas.store import statements as st
from circuit_atlas.synthetic import synthetic_graph
from circuit_atlas.ingest import IngestOptions

GEMMA = Path(__file__).resolve().parents[2] / "shared/fixtures/real-graphs/gemma-2-2b-clt-hp"


def bulk(uri: str, graphs, batch_edges: int, engine: str) -> tuple[int, float, float]:
    """Store `graphs` (an iterable) in batches; returns (edges, wall and CPU seconds spent storing)."""
    edges, seconds, cpu, batch = 0, 0.0, 0.0, []

    def flush():
        nonlocal seconds, edges, cpu
        start, start_cpu = time.perf_counter(), time.process_time()
        with open_store(uri, engine=engine) as store:
            store.add_graphs(batch)
        seconds += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
        edges += sum(g.n_edges for g in batch)
        batch.clear()

    for g in graphs:
        g.id                                  # the content hash is computed by whoever made the graph
        batch.append(g)
        if sum(x.n_edges for x in batch) >= batch_edges:
            flush()
    if batch:
        flush()
    return edges, seconds, cpu


def naive(uri: str, graphs, engine: str, max_edges: int, one_transaction: bool) -> tuple[int, float]:
    """One MERGE statement per edge: what a straightforward loader does. Only the edges are timed
    (each graph's nodes go in by the bulk path first), which flatters the naive loader.
    one_transaction: all of a graph's edge statements in one transaction (no commit per edge)."""
    import dataclasses

    import numpy as np

    with open_store(uri, engine=engine) as store:
        edges, seconds = 0, 0.0
        for g in graphs:
            empty = np.array([], dtype=np.int32)
            nodes_only = dataclasses.replace(g, edge_source=empty, edge_target=empty, edge_weight=empty)
            store.add_graph(nodes_only)
            stored = store.query("MATCH (n:Node) WHERE n.gid = $gid RETURN n.node_id AS id, n.uid AS uid",
                                 {"gid": nodes_only.id}, max_rows=len(g.nodes))
            uid_of = {r["id"]: r["uid"] for r in stored}
            uid = [uid_of[n.node_id] for n in g.nodes]
            conn = store._backend._conn                        # embedded only: the bench's one peek inside
            start = time.perf_counter()
            if one_transaction:
                conn.execute("BEGIN TRANSACTION")
            sample = slice(0, max_edges)
            for s, t, w in zip(g.edge_source[sample].tolist(), g.edge_target[sample].tolist(),
                               g.edge_weight[sample].tolist()):
                conn.execute(st.MERGE_EFFECT_NAIVE, {"src": uid[s], "dst": uid[t], "weight": w})
            if one_transaction:
                conn.execute("COMMIT")
            seconds += time.perf_counter() - start
            edges += min(max_edges, g.n_edges)
        return edges, seconds


def vm_hwm_mb() -> float:
    """This process's own peak resident memory (VmHWM), MB: unlike ru_maxrss it is not inherited across fork."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def realistic_phase(root: Path, n: int, aggregates: bool, batch_edges: int, engine: str,
                    into: Path | None = None) -> dict:
    """n realistic graphs into a fresh store, then n more into it (generation not timed); with `into`
    (a store of the realistic corpus, e.g. bench/queries.py's), n graphs into a copy of it instead. Run in
    its own process (--realistic-child) so that VmHWM is this phase's alone."""
    import shutil

    from circuit_atlas.corpus import load_summary, realistic_graph
    from bench.queries import tags

    summary = load_summary()
    root.mkdir(parents=True, exist_ok=True)   # the store is a file in it: its folder must exist
    uri = str(root / f"realistic-{'aggregates' if aggregates else 'none'}")
    out = {}
    phases = [(0, "fresh"), (n, "holding")]
    if into is not None:                      # its graphs are seeds 0 .. held-1: add the next n
        shutil.copyfile(into, uri)
        with open_store(uri, engine=engine, read_only=True) as store:
            held = store.query("MATCH (g:Graph) RETURN count(*) AS n")[0]["n"]
        phases = [(held, "holding")]
    for first, where in phases:
        edges = seconds = cpu = 0.0
        batch: list = []

        def flush():
            nonlocal edges, seconds, cpu
            start, start_cpu = time.perf_counter(), time.process_time()
            with open_store(uri, engine=engine, aggregates=aggregates) as store:
                store.add_graphs(batch)
            seconds += time.perf_counter() - start
            cpu += time.process_time() - start_cpu
            edges += sum(g.n_edges for g in batch)
            batch.clear()

        for i in range(first, first + n):
            batch.append(realistic_graph(summary, seed=i, tags=tags(i)))
            batch[-1].id
            if sum(g.n_edges for g in batch) >= batch_edges:
                flush()
        if batch:
            flush()
        out[where] = {"edges": edges, "seconds": seconds, "cpu": cpu, "held": first}
    with open_store(uri, engine=engine, read_only=True) as store:
        stored = store.query("MATCH (g:Graph) RETURN count(*) AS n, sum(g.n_edges) AS e")[0]
    out["graphs"], out["edges"] = int(stored["n"]), int(stored["e"])   # sum() of INT64: a Decimal
    size = sum(f.stat().st_size for f in Path(uri).rglob("*") if f.is_file()) if Path(uri).is_dir() else Path(uri).stat().st_size
    out["disk_bytes"] = size
    out["vm_hwm_mb"] = vm_hwm_mb()
    return out


def realistic(root: Path, n: int, baseline: bool, batch_edges: int, engine: str, other_engine: str | None,
              into: Path | None = None) -> None:
    """The realistic corpus with and without aggregate maintenance (and on another engine), each run in
    its own process."""
    import json
    import subprocess

    runs = [(engine, True)] + ([(engine, False)] if baseline else []) + ([(other_engine, True)] if other_engine else [])
    results = {}
    for eng, aggregates in runs:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--realistic-child", str(n), "--batch-edges",
               str(batch_edges), "--engine", eng, "--root", str(root / eng)] + ([] if aggregates else ["--no-aggregates"]) \
            + (["--into", str(into)] if into else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        results[(eng, aggregates)] = json.loads(proc.stdout.strip().splitlines()[-1])
    for (eng, aggregates), r in results.items():
        label = f"{eng}, " + ("with aggregates" if aggregates else "without aggregates (before)")
        for where in [w for w in ("fresh", "holding") if w in r]:
            x = r[where]
            text = "into a fresh store" if where == "fresh" else f"into a store holding {x['held']:,} graphs"
            print(f"realistic, {label}: {n:,} graphs {text}: {x['edges']:,.0f} edges in {x['seconds']:.1f} s "
                  f"({x['cpu']:.1f} CPU s) -> {x['edges'] / x['seconds']:,.0f} edges/s ({x['edges'] / x['cpu']:,.0f} per CPU s)")
        total = r["edges"]
        print(f"realistic, {label}: peak memory (VmHWM of the ingesting process) {r['vm_hwm_mb']:,.0f} MB; "
              f"store on disk {r['disk_bytes'] / 1e6:,.0f} MB for {r['graphs']:,} graphs, {total:,} edges = "
              f"{r['disk_bytes'] / 1e6 / (total / 1e6):.1f} MB per million edges")
    pairs = ([("aggregates / before", (engine, True), (engine, False))] if baseline else []) + \
            ([(f"{other_engine} / {engine}", (other_engine, True), (engine, True))] if other_engine else [])
    for name, a, b in pairs:
        on, off = results[a], results[b]
        for where in [w for w in ("fresh", "holding") if w in on]:
            ratio = (on[where]["edges"] / on[where]["seconds"]) / (off[where]["edges"] / off[where]["seconds"])
            cpu_ratio = (on[where]["edges"] / on[where]["cpu"]) / (off[where]["edges"] / off[where]["cpu"])
            print(f"{name} ({where}): {ratio:.2f}x edges/s, {cpu_ratio:.2f}x edges per CPU s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--synthetic", type=int, default=1000, help="number of synthetic graphs (10k edges each)")
    p.add_argument("--naive-sample", type=int, default=2, help="graphs loaded by the naive loader")
    p.add_argument("--naive-edges", type=int, default=2000, help="edges per naive graph (the rate is per edge)")
    p.add_argument("--batch-edges", type=int, default=IngestOptions.batch_edges, help="edges per transaction")
    p.add_argument("--engine", default="kuzu", help="embedded engine: kuzu or real_ladybug")
    p.add_argument("--realistic", type=int, default=0, metavar="N",
                   help="only the realistic phase: N graphs into a fresh store, N more into it, with and without "
                        "aggregate maintenance (each in its own process)")
    p.add_argument("--no-baseline", action="store_true", help="realistic phase: skip the run without aggregates")
    p.add_argument("--compare-engine", metavar="ENGINE", help="realistic phase: also run on this engine (e.g. ladybug)")
    p.add_argument("--into", type=Path, metavar="STORE",
                   help="realistic phase: add the N graphs to a copy of STORE (a realistic corpus, e.g. "
                        "bench/queries.py's queries-realistic-10000.db) instead of fresh + N more")
    p.add_argument("--root", type=Path, help="where the stores go (default: a new temporary folder)")
    p.add_argument("--realistic-child", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--no-aggregates", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--store", default=None, help="also Neo4j at this bolt:// URI (WIPED first), and neo4j-admin import")
    p.add_argument("--neo4j-dir", default=None, help="the Neo4j server's instance folder: its CPU seconds too")
    p.add_argument("--skip-naive", action="store_true", help="skip the naive loader (phase 3)")
    p.add_argument("--bolt-synthetic", type=int, default=None, metavar="N",
                   help="only the first N synthetic graphs through Bolt (default: all of --synthetic); the "
                        "import always takes all of them")
    p.add_argument("--bolt-profile", action="store_true",
                   help="only the Bolt profile (with --store and --neo4j-dir): client and server CPU per statement")
    args = p.parse_args()
    if args.bolt_profile:
        wipe(args.store)
        bolt_profile(args.store, [synthetic_graph(300_000 + i) for i in range(20)], args.neo4j_dir)
        return
    if args.realistic_child:
        import json
        print(json.dumps(realistic_phase(args.root, args.realistic_child, not args.no_aggregates, args.batch_edges,
                                         args.engine, args.into)))
        return
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in __import__('os').getloadavg())} "
          f"on {__import__('os').cpu_count()} cores")
    root = args.root or Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"engine {args.engine}, store under {root}")
    if args.realistic:
        realistic(root, args.realistic, not args.no_baseline, args.batch_edges, args.engine, args.compare_engine,
                  args.into)
        print(f"load average at end: {' '.join(f'{x:.1f}' for x in __import__('os').getloadavg())}")
        print("target: >= 1,000,000 edges/s into a store holding the corpus, with aggregates")
        return

    if GEMMA.is_dir():
        from circuit_atlas.ingest.formats import read_graph_file
        start = time.perf_counter()
        graphs = [read_graph_file(f) for f in sorted(GEMMA.glob("*.json"))]
        parse_s = time.perf_counter() - start
        edges, store_s, cpu_s = bulk(str(root / "gemma"), graphs, args.batch_edges, args.engine)
        print(f"gemma-2-2b: {len(graphs)} graphs, {edges:,} edges: parse {parse_s:.2f} s, store {store_s:.2f} s "
              f"({cpu_s:.2f} CPU s) -> {edges / store_s:,.0f} edges/s stored ({edges / cpu_s:,.0f} per CPU s), "
              f"{edges / (parse_s + store_s):,.0f} edges/s file-to-store")
        gemma = (graphs, edges / store_s)
    else:
        gemma = None
        print(f"gemma-2-2b: skipped, {GEMMA} is absent")

    n = args.synthetic
    for first, where in ((0, "into a fresh store"), (n, f"into the same store, holding {n:,} graphs")):
        synth = (synthetic_graph(i) for i in range(first, first + n))
        edges, store_s, cpu_s = bulk(str(root / "synthetic"), synth, args.batch_edges, args.engine)
        print(f"synthetic bulk {where}: {n} graphs, {edges:,} edges in {store_s:.1f} s ({cpu_s:.1f} CPU s) -> "
              f"{edges / store_s:,.0f} edges/s ({edges / cpu_s:,.0f} per CPU s)")
        if first == 0:
            bulk_rate = edges / store_s

    if args.store:
        neo4j_phases(args, root, gemma, bulk_rate)
    if args.skip_naive:
        return
    sample = [synthetic_graph(100_000 + i) for i in range(args.naive_sample)]
    for one_transaction in (False, True):
        edges, naive_s = naive(str(root / f"naive-{one_transaction}"), sample, args.engine, args.naive_edges,
                               one_transaction)
        naive_rate = edges / naive_s
        how = "in one transaction per graph" if one_transaction else "each auto-committed"
        print(f"naive MERGE per edge, {how}: {len(sample)} graphs x {args.naive_edges:,} edges in {naive_s:.1f} s "
              f"-> {naive_rate:,.0f} edges/s (1,000 x 10k edges would take {1e7 / naive_rate / 3600:.1f} h); "
              f"bulk / naive = {bulk_rate / naive_rate:,.0f}x")
    print("targets: >= 1,000,000 edges/s bulk on the embedded store, bulk >= 50x naive")


def server_cpu(neo4j_dir) -> float:
    """CPU seconds the Neo4j server process has used (0.0 when its folder was not given)."""
    if not neo4j_dir:
        return 0.0
    from circuit_atlas.store.neo4j_server import read_state
    fields = Path(f"/proc/{read_state(Path(neo4j_dir).resolve()).pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / __import__("os").sysconf("SC_CLK_TCK")


def wipe(uri: str) -> None:
    with open_store(uri) as store:
        while store.execute("MATCH (n) WITH n LIMIT 20000 DETACH DELETE n RETURN count(*) AS n")[0]["n"]:
            pass


def bolt(uri: str, graphs, neo4j_dir, batch_graphs: int = 50) -> tuple[int, float, float, float]:
    """Store `graphs` through Bolt (Store.add_graphs); (edges, wall s, client CPU s, server CPU s)."""
    edges, wall, cpu, srv, batch = 0, 0.0, 0.0, 0.0, []
    with open_store(uri) as store:
        def flush():
            nonlocal edges, wall, cpu, srv
            t, c, s = time.perf_counter(), time.process_time(), server_cpu(neo4j_dir)
            store.add_graphs(batch)
            wall += time.perf_counter() - t
            cpu += time.process_time() - c
            srv += server_cpu(neo4j_dir) - s
            edges += sum(g.n_edges for g in batch)
            batch.clear()

        for g in graphs:
            g.id
            batch.append(g)
            if len(batch) == batch_graphs:
                flush()
        if batch:
            flush()
    return edges, wall, cpu, srv


def bolt_profile(uri: str, graphs, neo4j_dir) -> None:
    """Where Bolt ingest spends its time: client CPU (rows and parameters built, packed) beside the
    server's CPU per statement of send_graph and per commit, one transaction per graph as
    Store.add_graphs runs it. Needs --neo4j-dir (the server's CPU seconds)."""
    from collections import defaultdict

    from circuit_atlas.store.neo4j import send_graph

    names = {s.cypher: name for name, s in st.STORE_STATEMENTS.items()}
    server, wall = defaultdict(float), defaultdict(float)
    with open_store(uri) as store:
        backend = store._backend                               # the bench's one peek inside
        first = backend.allocate_uids(sum(len(g.nodes) for g in graphs))
        t, c, s0 = time.perf_counter(), time.process_time(), server_cpu(neo4j_dir)
        with backend._session(read=False) as session:
            for g in graphs:
                tx = session.begin_transaction()

                def run(cypher, params, tx=tx):
                    name, t1, s1 = names.get(cypher.strip(), cypher[:30]), time.perf_counter(), server_cpu(neo4j_dir)
                    rows = [r.data() for r in tx.run(cypher, params)]
                    wall[name] += time.perf_counter() - t1
                    server[name] += server_cpu(neo4j_dir) - s1
                    return rows
                send_graph(run, g, first, allocate=backend.allocate_neighbour_end_ids)
                first += len(g.nodes)
                t1, s1 = time.perf_counter(), server_cpu(neo4j_dir)
                tx.commit()
                wall["(commit)"] += time.perf_counter() - t1
                server["(commit)"] += server_cpu(neo4j_dir) - s1
        total_wall, client, total_server = time.perf_counter() - t, time.process_time() - c, server_cpu(neo4j_dir) - s0
    edges = sum(g.n_edges for g in graphs)
    print(f"Bolt profile, {len(graphs)} synthetic graphs, {edges:,} edges: {total_wall:.1f} s wall; client "
          f"{client:.2f} CPU s ({client / edges * 1e6:.1f} µs/edge), server {total_server:.2f} CPU s "
          f"({total_server / edges * 1e6:.1f} µs/edge) -> {edges / (client + total_server):,.0f} edges per CPU s")
    for name in sorted(server, key=lambda k: -server[k]):
        print(f"  {name:28s} server {server[name]:6.2f} CPU s ({100 * server[name] / max(total_server, 1e-9):3.0f}%), "
              f"wall {wall[name]:6.2f} s")


def statement_path(uri: str, graphs, neo4j_dir) -> tuple[int, float, float]:
    """The portable statement path through Bolt, one transaction per graph: the Bolt baseline."""
    from circuit_atlas.store.base import next_uid, write_with_statements
    from circuit_atlas.store.rows import graph_rows

    with open_store(uri) as store:
        backend = store._backend                               # the bench's one peek inside
        t, s = time.perf_counter(), server_cpu(neo4j_dir)
        for g in graphs:
            def work(tx, g=g):
                rows = graph_rows([g], next_uid(lambda c: [r.data() for r in tx.run(c)]))
                write_with_statements(lambda c, p: [r.data() for r in tx.run(c, p)], rows)
            with backend._session(read=False) as session:
                session.execute_write(work)
        return sum(g.n_edges for g in graphs), time.perf_counter() - t, server_cpu(neo4j_dir) - s


def import_phases(home: Path) -> str:
    """The importer's own phase times, from the log run_import keeps (logs/import.log)."""
    import re

    log = home / "logs" / "import.log"
    text = log.read_text() if log.is_file() else ""
    return ", ".join(f"{m[1].lower()} {m[2]}" for m in re.finditer(r"^(\w[\w ]+?) COMPLETED in (.+)$", text, re.M)) or "?"


def neo4j_phases(args, root: Path, gemma, embedded_rate: float) -> None:
    from circuit_atlas.store.neo4j_import import run_import, write_csv

    def line(what, edges, wall, cpu, srv, versus):
        per_cpu = f", {edges / (cpu + srv):,.0f} per CPU s (client {cpu:.1f} + server {srv:.1f})" if srv else ""
        print(f"{what}: {edges:,} edges in {wall:.1f} s -> {edges / wall:,.0f} edges/s{per_cpu}; {versus}", flush=True)
        return edges / wall

    print(f"Neo4j at {args.store} (wiped), load average {__import__('os').getloadavg()[0]:.1f}", flush=True)
    wipe(args.store)
    if gemma:
        edges, wall, cpu, srv = bolt(args.store, gemma[0], args.neo4j_dir)
        line(f"gemma-2-2b through Bolt, {len(gemma[0])} graphs", edges, wall, cpu, srv,
             f"embedded bulk / Bolt = {gemma[1] / (edges / wall):.1f}x")
        wipe(args.store)
    n = args.synthetic
    n_bolt = min(n, args.bolt_synthetic or n)
    edges, wall, cpu, srv = bolt(args.store, (synthetic_graph(i) for i in range(n_bolt)), args.neo4j_dir)
    bolt_rate = line(f"synthetic through Bolt, {n_bolt} graphs", edges, wall, cpu, srv,
                     f"embedded bulk / Bolt = {embedded_rate / (edges / wall):.1f}x; target >= 200,000 edges/s")
    if args.neo4j_dir:
        wipe(args.store)
        bolt_profile(args.store, [synthetic_graph(300_000 + i) for i in range(20)], args.neo4j_dir)
    sample = [synthetic_graph(200_000 + i) for i in range(max(args.naive_sample, 5))]
    edges, wall, srv = statement_path(args.store, sample, args.neo4j_dir)
    line(f"statement path through Bolt (baseline), {len(sample)} graphs", edges, wall, 0.0, srv,
         f"Bolt column path / statement path = {bolt_rate / (edges / wall):.1f}x")
    wipe(args.store)

    home = root / "neo4j-import"
    batches = [[synthetic_graph(i) for i in range(s, min(s + 100, n))] for s in range(0, n, 100)]
    for batch in batches:
        for g in batch:
            g.id
    t, c = time.perf_counter(), time.process_time()
    files = write_csv(batches, root / "import-csv")
    csv_s, csv_cpu = time.perf_counter() - t, time.process_time() - c
    del batches
    import_s, own_s = run_import(home, files)
    size = sum(p.stat().st_size for p in (root / "import-csv").glob("*.csv"))
    total = csv_s + import_s
    print(f"neo4j-admin import, {files.graphs} graphs, {files.edges:,} edges ({size / 1e6:,.0f} MB of CSV): CSV written "
          f"in {csv_s:.1f} s ({csv_cpu:.1f} CPU s; generation not timed); importer {import_s:.1f} s with the JVM's "
          f"start -> {files.edges / import_s:,.0f} edges/s, {own_s:.1f} s by its own report -> "
          f"{files.edges / own_s:,.0f} edges/s; end to end (CSV + importer) {files.edges / total:,.0f} edges/s; "
          f"import / Bolt = {files.edges / total / bolt_rate:.1f}x end to end; target >= 1,000,000 edges/s",
          flush=True)
    print(f"  importer phases: {import_phases(home)}", flush=True)


if __name__ == "__main__":
    main()
