"""Latency of every library query on a realistic corpus of 1,000 and 10,000 graphs (or a Neo4j server).

    PYTHONPATH=. python bench/queries.py                              # 1,000 and 10,000 realistic graphs
    PYTHONPATH=. python bench/queries.py --sizes 1000 --repeat 3
    PYTHONPATH=. python bench/queries.py --sizes 1000 --store bolt://127.0.0.1:7687   # Neo4j (NEO4J_PASSWORD)
    PYTHONPATH=. python bench/queries.py --corpus uniform             # the former toy corpus (Zipf features)

Corpus "realistic" (default, circuit_atlas.corpus): graphs drawn from the committed summary of the 57
real Gemma-2-2B CLT graphs (bench/corpus/gemma-2-2b-clt-hp.json): ~590 nodes and ~6,700 edges each,
real degree and weight distributions, features recurring with their real shares; 10,000 graphs hold
~67M edges. Corpus "uniform": the former toy shapes (1,000 x 500 nodes / 10k edges; 10,000 x 200 / 1k).
Graphs are tagged lang (3), concept (5), item and set, so the multilingual queries have parallel prompts.
Embedded stores are kept in --dir and reused when their graph count matches; a Neo4j store (--store)
is filled when its graph count differs from the size asked for (a non-empty one with another count is
refused: empty it first).

Prints the median latency of each query, its growth from the first corpus to the second, and
ratios against baselines measured in the same run: a trivial count, and the naive 3-hop all-paths
query (no weight threshold) that common-paths is designed to avoid. Target: each <= 1 s at 1,000 graphs.

With --store bolt://… the same corpora are also built in that Neo4j server (reused when its graph
count matches; an empty one is filled through Bolt, or, given --neo4j-dir, the server's
scripts/neo4j.sh folder, stopped, loaded with neo4j-admin import and started again on the same port)
and every query runs there too: the table shows both backends side by side, with Neo4j / embedded.

    PYTHONPATH=. python bench/queries.py --sizes 1000 --store $NEO4J_URI --neo4j-dir .neo4j
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from circuit_atlas import queries
from circuit_atlas.corpus import load_summary, realistic_graph
from circuit_atlas.store import StoreError, is_neo4j_uri, open_store
from circuit_atlas.synthetic import synthetic_graph

UNIFORM = {1_000: dict(n_nodes=500, n_edges=10_000), 10_000: dict(n_nodes=200, n_edges=1_000)}
BATCH_EDGES = 16_000_000          # graphs per add_graphs call: what ingest batches (IngestOptions)
LANGS = ("en", "fr", "kl")
TRIVIAL = "MATCH (g:Graph) RETURN count(*) AS n"
NAIVE_3HOP = """
MATCH (e:Node)-[r1:EFFECT]->(a:Node)-[r2:EFFECT]->(b:Node)-[r3:EFFECT]->(l:Node)
WHERE e.kind = 'embedding' AND l.kind = 'logit' AND a.fkey IS NOT NULL AND b.fkey IS NOT NULL
RETURN a.fkey AS f1, b.fkey AS f2, count(*) AS n ORDER BY n DESC LIMIT 25
"""


def tags(i: int) -> dict:
    """Item i//3 in three languages: graphs 3k, 3k+1, 3k+2 are parallel prompts."""
    return {"lang": LANGS[i % 3], "item": str(i // 3), "concept": f"c{(i // 3) % 5}", "set": "bench"}


def make_graph(corpus: str, n_graphs: int, i: int, summary: dict | None):
    if corpus == "realistic":
        return realistic_graph(summary, seed=i, tags=tags(i))
    return synthetic_graph(i, tags=tags(i), **UNIFORM[n_graphs])


def graphs_of(corpus: str, n_graphs: int, batch: int):
    """The corpus in lists of `batch` graphs (for neo4j-admin import)."""
    summary = load_summary() if corpus == "realistic" else None
    for start in range(0, n_graphs, batch):
        yield [make_graph(corpus, n_graphs, i, summary) for i in range(start, min(start + batch, n_graphs))]


def import_into(uri: str, neo4j_dir: Path, n_graphs: int, corpus: str) -> None:
    """Fill the empty Neo4j at `uri` (the server of `neo4j_dir`) with neo4j-admin import, restarting it."""
    import shutil

    from circuit_atlas.settings import lookup
    from circuit_atlas.store import neo4j_server
    from circuit_atlas.store.neo4j_import import run_import, write_csv

    home = neo4j_dir.resolve()
    running = neo4j_server.read_state(home)
    neo4j_server.stop(home)
    csv = home / "bench-import-csv"
    try:
        t = time.perf_counter()
        files = write_csv(graphs_of(corpus, n_graphs, 100), csv)
        wall, own = run_import(home, files, overwrite=True)
        print(f"  imported {files.edges:,} edges with neo4j-admin in {wall:.0f} s ({own:.0f} s by its report; "
              f"{time.perf_counter() - t:.0f} s with generation and CSV)", flush=True)
    finally:
        shutil.rmtree(csv, ignore_errors=True)
        neo4j_server.start(home, lookup("neo4j_password"), port=running.port, heap=running.heap,
                           pagecache=running.pagecache)      # the memory it had (None: the defaults)
    with open_store(uri):                     # the schema's constraints and indexes, built on the imported data
        pass


def build(uri: str, n_graphs: int, corpus: str, neo4j_dir: Path | None = None) -> None:
    summary = load_summary() if corpus == "realistic" else None
    with open_store(uri) as store:
        have = store.query(TRIVIAL)[0]["n"]
        if have == n_graphs:
            print(f"  reusing {uri} ({have} graphs)")
            return
        if have:
            sys.exit(f"{uri} holds {have} graphs, not {n_graphs}; empty it or pick another --dir")
    if neo4j_dir:
        return import_into(uri, neo4j_dir, n_graphs, corpus)
    t_gen = t_ingest = 0.0
    edges, batch = 0, []

    def flush():
        nonlocal t_ingest, edges
        t = time.perf_counter()
        with open_store(uri) as store:        # one open per batch, like ingest
            store.add_graphs(batch)
        t_ingest += time.perf_counter() - t
        edges += sum(g.n_edges for g in batch)
        batch.clear()
        print(f"  {edges:,} edges stored", flush=True)

    for i in range(n_graphs):
        t = time.perf_counter()
        batch.append(make_graph(corpus, n_graphs, i, summary))
        batch[-1].id
        t_gen += time.perf_counter() - t
        if sum(g.n_edges for g in batch) >= BATCH_EDGES or (is_neo4j_uri(uri) and len(batch) == 100):
            flush()
    if batch:
        flush()
    print(f"  generated in {t_gen:.0f} s, stored {edges:,} edges in {t_ingest:.0f} s ({edges / t_ingest:,.0f} edges/s)")


def cases(store) -> dict[str, dict]:
    """Parameters for every listed query, picked from the data so each has something to find."""
    hub = queries.run(store, "hubs-by-graphs", limit=1)[0]["fkey"]
    token = store.query("MATCH (n:Node) WHERE n.kind = 'logit' RETURN n.token AS t LIMIT 1")[0]["t"]
    g = store.query("MATCH (g:Graph) RETURN g.id AS id, g.slug AS slug ORDER BY g.slug LIMIT 2")
    return {
        "shared-multilingual-features": dict(concept="c0", k=2),
        "multilingual-iou": dict(concept="c0"),
        "supernodes": {},
        "common-paths": dict(hops=3, min_weight=2.0),
        "common-paths hops=2": dict(hops=2, min_weight=2.0),
        "common-paths hops=4": dict(hops=4, min_weight=2.5),
        "common-paths token": dict(hops=3, min_weight=2.0, token=token),
        "common-paths tag": dict(hops=3, min_weight=2.0, tag="lang=fr"),
        "hubs-by-graphs": {}, "hubs-by-weight": {}, "hubs-by-influence": {},
        "feature-profile": dict(fkey=hub), "feature-graphs": dict(fkey=hub),
        "feature-upstream": dict(fkey=hub), "feature-downstream": dict(fkey=hub),
        "graph-diff": dict(a=g[0]["id"], b=g[1]["slug"]),
        "graph-diff tags": dict(a="item=0", b="item=1"),
        "search-features": dict(text="feature 3/1"),
        "search-graphs": dict(text=" w12"),
        "search-graphs tags": dict(tags=["lang=fr", "concept=c1"]),
    }


SLOW_S = 20.0      # a query slower than this once is not repeated (its one time is reported)


def median_s(fn, repeat: int) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds of this process, all engine threads included);
    repeat=0: one cold run. A query that times out is reported as inf."""
    from circuit_atlas.store import QueryTimeoutError

    if repeat:
        t, c = time.perf_counter(), time.process_time()
        try:
            fn()  # warm the caches once
        except QueryTimeoutError:
            return float("inf"), time.process_time() - c
        if time.perf_counter() - t > SLOW_S:
            return time.perf_counter() - t, time.process_time() - c
    wall, cpu = [], []
    for _ in range(max(repeat, 1)):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def bench(uri: str, repeat: int, naive: bool, propose: bool) -> dict[str, tuple[float, float]]:
    out = {}
    with open_store(uri) as store:
        if propose:                   # stores the supernodes that the supernodes query lists; timed once
            try:                      # the defaults: 2,000 candidates, as `supernodes propose` runs it
                out["propose-supernodes (analysis, writes)"] = median_s(
                    lambda: queries.run(store, "propose-supernodes"), 0)
            except StoreError as e:
                print(f"  propose-supernodes failed: {str(e).splitlines()[0]}", flush=True)
        out["(baseline) trivial count"] = median_s(lambda: store.query(TRIVIAL), repeat)
        if naive:
            out["(baseline) naive 3-hop, all edges"] = median_s(lambda: store.query(NAIVE_3HOP, timeout_s=600), 1)
        for label, params in cases(store).items():
            name = label.split(" ")[0]
            try:
                out[label] = median_s(lambda: queries.run(store, name, params), repeat)
            except StoreError as e:                 # a timeout on a loaded machine: say so, go on with the rest
                print(f"  {label:<36} failed: {str(e).splitlines()[0]}", flush=True)
                continue
            print(f"  {label:<36} {out[label][0]:8.3f} s wall {out[label][1]:8.3f} s cpu", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    ap.add_argument("--corpus", choices=["realistic", "uniform"], default="realistic")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per query (median)")
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "circuit-atlas-bench",
                    help="where the embedded stores are built and kept")
    ap.add_argument("--store", default=None, help="also a Neo4j server (bolt://…); it must be empty or hold this corpus")
    ap.add_argument("--no-naive", action="store_true", help="skip the slow naive 3-hop baseline")
    ap.add_argument("--no-propose", action="store_true",
                    help="skip propose-supernodes (a writing analysis, timed once); supernodes then lists none")
    ap.add_argument("--neo4j-dir", type=Path, default=None,
                    help="the --store server's scripts/neo4j.sh folder: an empty database is filled by neo4j-admin import "
                         "and the server restarted on its port with the heap and page cache it was started with")
    args = ap.parse_args()
    results, neo4j = {}, {}
    for n in args.sizes:
        print(f"corpus: {n} {args.corpus} graphs", flush=True)
        uri = str(args.dir / f"queries-{args.corpus}-{n}.db")
        args.dir.mkdir(parents=True, exist_ok=True)
        build(uri, n, args.corpus)
        results[n] = bench(uri, args.repeat, naive=not args.no_naive and n == args.sizes[0], propose=not args.no_propose)
        if args.store:
            print(f"  on Neo4j {args.store}", flush=True)
            build(args.store, n, args.corpus, neo4j_dir=args.neo4j_dir)
            neo4j[n] = bench(args.store, args.repeat, naive=not args.no_naive and n == args.sizes[0],
                             propose=not args.no_propose)
    if neo4j:
        return side_by_side(results, neo4j)
    sizes = list(results)
    print(f"\nmedian seconds, wall / cpu (cpu: this process, all engine threads); load average now "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores" + (f"; growth = wall at {sizes[-1]} / at {sizes[0]} graphs"
                                                                   if len(sizes) > 1 else ""))
    base = results[sizes[0]]["(baseline) trivial count"][0]
    print(f"{'query':<40}" + "".join(f"{f'{n} graphs':>20}" for n in sizes) + ("   growth" if len(sizes) > 1 else "")
          + "  x trivial  <=1s")
    for label in dict.fromkeys(label for n in sizes for label in results[n]):
        vals = [results[n].get(label) for n in sizes]
        if not vals[0]:
            print(f"{label:<40} failed (see above)")
            continue
        cells = "".join(f"{v[0]:10.3f} /{v[1]:7.3f}" if v else f"{'-':>20}" for v in vals)
        growth = f"{vals[-1][0] / vals[0][0]:8.1f}x" if len(sizes) > 1 and vals[-1] and vals[0] else ""
        last = vals[-1] or (0.0, 0.0)
        ok = "" if label.startswith("(") or "analysis" in label or not vals[-1] else (
            "yes" if last[0] <= 1.0 else "cpu" if last[1] <= 1.0 else "NO")
        ratio = f"{vals[0][0] / base:10.0f}" if vals[0] else f"{'-':>10}"
        print(f"{label:<40}{cells}{growth:>9}{ratio}  {ok}")
    print(f"<=1s (at {sizes[-1]} graphs): yes = wall <= 1 s; cpu = wall > 1 s on this loaded machine but cpu <= 1 s")


def side_by_side(embedded: dict, neo4j: dict) -> None:
    """The latency table with both backends: per corpus size, embedded and Neo4j, and their ratio."""
    sizes = list(embedded)
    print(f"\nmedian seconds, wall / cpu (cpu: this process; Neo4j's own work runs in the server, so its cpu "
          f"column is the client's only); load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'query':<40}" + "".join(f"{f'embedded {n}':>20}{f'neo4j {n}':>20}{'neo4j/emb':>10}" for n in sizes)
          + "  <=1s@1k neo4j")
    for label in dict.fromkeys([*embedded[sizes[0]], *neo4j[sizes[0]]]):
        cells = ""
        for n in sizes:
            e, g = embedded[n].get(label), neo4j[n].get(label)
            cells += "".join(f"{v[0]:10.3f} /{v[1]:7.3f}" if v else f"{'-':>20}" for v in (e, g))
            cells += f"{g[0] / e[0]:9.1f}x" if e and g and e[0] > 0 else f"{'-':>10}"
        first = neo4j[sizes[0]].get(label)
        ok = "" if label.startswith("(") or "analysis" in label or not first else ("yes" if first[0] <= 1.0 else "NO")
        print(f"{label:<40}{cells}  {ok}")


if __name__ == "__main__":
    main()
