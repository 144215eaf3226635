"""Time `labels auto` on a realistic corpus: every feature labelled, stored, linked and shown.

    PYTHONPATH=. python bench/labels.py                   # 1,000 realistic graphs (~98k features)
    PYTHONPATH=. python bench/labels.py --graphs 10000 --dir /tmp/bench-labels

Builds the corpus of bench/queries.py into a fresh store under --dir (deleted afterwards unless
--keep), then times `labels auto` twice: on the unlabelled store, and again (every automatic label
replaced). Baseline, measured in the same run on the same store: the per-label statements the
labels used to be linked with (UNWIND rows, MATCH each feature and label by key, MERGE the link;
BATCH rows a statement), timed for one batch and scaled to every label. Before 2026-12-02 that
linking, with a MERGE per label to store them, made `labels auto` time out at 1,000 graphs.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.queries import build
from circuit_atlas.queries import labels
from circuit_atlas.store import open_store

OLD_LINK = """UNWIND $rows AS r
MATCH (f:Feature {key: r.fkey})
MATCH (l:FeatureLabel {id: r.id})
MERGE (f)-[:HAS_LABEL]->(l)"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graphs", type=int, default=1_000)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "circuit-atlas-bench-labels")
    ap.add_argument("--keep", action="store_true", help="keep the store (reused by the next run of the same size)")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    uri = str(args.dir / f"labels-realistic-{args.graphs}.db")
    if not args.keep and os.path.exists(uri):
        shutil.rmtree(uri) if os.path.isdir(uri) else os.remove(uri)
    build(uri, args.graphs, "realistic")
    try:
        with open_store(uri) as store:
            times = {}
            for run in ("first run", "second run (replaces every label)"):
                t, c = time.perf_counter(), time.process_time()
                n = len(labels.auto_labels(store))
                times[run] = (time.perf_counter() - t, time.process_time() - c)
            rows = [{"id": f"{r['fkey']}|{labels.AUTO}", "fkey": r["fkey"]}
                    for r in store.query("MATCH (f:Feature) RETURN f.key AS fkey ORDER BY fkey LIMIT $n",
                                         {"n": labels.BATCH})]
            t = time.perf_counter()
            store.execute(OLD_LINK, {"rows": rows})
            per_batch = time.perf_counter() - t
    finally:
        if not args.keep:
            shutil.rmtree(uri, ignore_errors=True) if os.path.isdir(uri) else os.remove(uri)
    old = per_batch * n / len(rows)
    print(f"\nlabels auto on {args.graphs:,} realistic graphs, {n:,} features; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for run, (wall, cpu) in times.items():
        print(f"  {run:<36} {wall:7.1f} s wall {cpu:7.1f} s cpu   {n / wall:9,.0f} features/s")
    print(f"  (baseline) linking alone, per label  {old:7.1f} s wall (one batch of {len(rows):,}: {per_batch:.2f} s, "
          f"scaled to {n:,})")
    print(f"  labels auto, whole / baseline link   {times['first run'][0] / old:7.2f}x")


if __name__ == "__main__":
    main()
