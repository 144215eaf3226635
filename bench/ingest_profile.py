"""Where embedded ingest spends its time in a large store: CPU and wall seconds of each step of one
`Store.add_graphs` batch (building the rows, each statement and COPY, COMMIT), and the engine's floor
(the EFFECT rows alone), measured on a COPY of STORE (a realistic corpus, e.g. bench/queries.py's
queries-realistic-10000.db), which this deletes afterwards.

    PYTHONPATH=. python bench/ingest_profile.py STORE --graphs 200            # one batch, per step
    PYTHONPATH=. python bench/ingest_profile.py STORE --graphs 400 --floor    # EFFECT alone, 2 ways

Graphs are drawn with seeds after those STORE holds (generation not timed). docs/store.md has the figures.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path

if not __package__:   # run as a file: bench/ is sys.path[0] and would shadow the ingest package
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.queries import tags
from circuit_atlas.corpus import load_summary, realistic_graph
from circuit_atlas.store import embedded, open_store
from circuit_atlas.store import statements as st
from circuit_atlas.store.rows import graph_rows

STEPS: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])     # step -> [wall s, CPU s]


def timed(name, fn):
    def wrapper(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            STEPS[name][0] += time.perf_counter() - wall
            STEPS[name][1] += time.process_time() - cpu
    return wrapper


class TimedConnection:
    """The backend's connection, timing each statement by its first words (COPY <table>, COMMIT, ...)."""
    def __init__(self, conn):
        self._conn = conn

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def execute(self, cypher, params=None):
        names = {st.MAX_UID: "MAX_UID", st.ADD_FEATURE_AGGREGATES: "ADD_FEATURE_AGGREGATES"}
        name = names.get(cypher) or " ".join(cypher.split()[:2]).split("$")[0]
        run = timed(name, self._conn.execute)
        return run(cypher) if params is None else run(cypher, params)


def profile_batch(path: str, graphs) -> None:
    import circuit_atlas.store.rows as rows_module
    backend = embedded.EmbeddedBackend
    embedded.graph_rows = timed("graph_rows (Python, total)", rows_module.graph_rows)
    init = backend.__init__

    def timed_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self._conn = TimedConnection(self._conn)
    backend.__init__ = timed_init
    with open_store(path) as store:
        wall, cpu = time.perf_counter(), time.process_time()
        store.add_graphs(graphs)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    edges = sum(g.n_edges for g in graphs)
    print(f"{len(graphs)} graphs, {edges:,} edges: add_graphs {wall:.1f} s ({cpu:.1f} CPU s) -> {edges / wall:,.0f} "
          f"edges/s, {edges / cpu:,.0f} per CPU s; load {os.getloadavg()[0]:.1f}")
    for name, (w, c) in sorted(STEPS.items(), key=lambda kv: -kv[1][1]):
        print(f"  {name:40s} {c:6.2f} CPU s ({100 * c / cpu:3.0f}%)  {w:6.2f} s wall")


def floor(path: str, graphs) -> None:
    """EFFECT rows alone (their nodes COPYd and committed first), in auto-commit and in BEGIN/COMMIT."""
    import kuzu

    db = kuzu.Database(path)
    conn = kuzu.Connection(db)
    half = len(graphs) // 2
    for label, batch, manual in (("auto-commit", graphs[:half], False), ("BEGIN/COMMIT", graphs[half:], True)):
        rows = graph_rows(batch, conn.execute(st.MAX_UID).get_next()[0] + 1, with_aggregates=False)
        conn.execute("COPY Node FROM $d", {"d": rows.nodes})
        wall, cpu = time.perf_counter(), time.process_time()
        if manual:
            conn.execute("BEGIN TRANSACTION")
        conn.execute("COPY EFFECT FROM $d", {"d": rows.effects})
        if manual:
            conn.execute("COMMIT")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        e = rows.effects.num_rows
        print(f"EFFECT rows alone, {label}: {e:,} edges in {wall:.1f} s ({cpu:.1f} CPU s) -> {e / wall:,.0f} edges/s, "
              f"{e / cpu:,.0f} per CPU s; load {os.getloadavg()[0]:.1f}")
    db.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("store", type=Path, help="a realistic-corpus store (copied, never written)")
    p.add_argument("--graphs", type=int, default=200, help="realistic graphs in the batch")
    p.add_argument("--floor", action="store_true", help="the EFFECT rows alone (half the graphs each way)")
    p.add_argument("--root", type=Path, default=Path("/tmp"), help="where the copy goes")
    args = p.parse_args()
    copy = args.root / f"ingest-profile-{os.getpid()}.db"
    shutil.copyfile(args.store, copy)
    try:
        with open_store(str(copy), read_only=True) as store:
            held = store.query("MATCH (g:Graph) RETURN count(*) AS n")[0]["n"]
        summary = load_summary()
        graphs = [realistic_graph(summary, seed=i, tags=tags(i)) for i in range(held, held + args.graphs)]
        for g in graphs:
            g.id
        print(f"load average at start: {os.getloadavg()[0]:.1f}; store holds {held:,} graphs")
        (floor if args.floor else profile_batch)(str(copy), graphs)
    finally:
        copy.unlink(missing_ok=True)
        for extra in copy.parent.glob(copy.name + ".*"):      # .wal / .shadow beside it
            extra.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
