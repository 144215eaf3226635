"""Parse speed of graph JSON: `read_graph_file` on the 57 real Gemma-2-2B graphs (~388k links, 50 MB).

Prints the CPU time (best of 3; the machine is shared) of the full read (parse + validation + Graph) and, as the baseline measured in the same
run, the time of a bare `json.loads` of the same bytes. Also times writing them back.

    PYTHONPATH=. python bench/bench_formats.py [DIR]   # DIR defaults to ../shared/fixtures/real-graphs/gemma-2-2b-clt-hp
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from circuit_atlas.ingest.formats import read_graph_file
from circuit_atlas.ingest.write import write_graph_json

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared/fixtures/real-graphs/gemma-2-2b-clt-hp"


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times)


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR
    paths = sorted(folder.glob("*.json"))
    if not paths:
        sys.exit(f"no *.json graphs in {folder}")
    blobs = [p.read_bytes() for p in paths]   # warm the page cache for both measurements
    graphs = [read_graph_file(p) for p in paths]
    n_edges = sum(g.n_edges for g in graphs)
    baseline = best_of(lambda: [json.loads(b) for b in blobs])
    ours = best_of(lambda: [read_graph_file(p) for p in paths])
    with tempfile.TemporaryDirectory() as tmp:
        write = best_of(lambda: [write_graph_json(g, Path(tmp) / f"{i}.json") for i, g in enumerate(graphs)])
    mb = sum(map(len, blobs)) / 1e6
    print(f"{len(paths)} graphs, {n_edges:,} links, {mb:.1f} MB")
    print(f"baseline json.loads        {baseline:6.2f} s")
    print(f"read_graph_file            {ours:6.2f} s   ({ours / baseline:.2f}x the baseline, "
          f"{n_edges / ours / 1e6:.2f} M links/s)")
    print(f"write_graph_json           {write:6.2f} s   ({write / baseline:.2f}x the baseline)")


if __name__ == "__main__":
    main()
