"""The walked common-paths queries (min_weight below 1.0): pruning negative edges while walking, against
filtering whole paths afterwards, on any store. The baseline is the same .cypher file with its pruning
line taken out, run in the same process, so the ratio compares the two on the same data and load.

    PYTHONPATH=. python bench/paths_walk.py STORE [--repeat 3]       # STORE: a file, or bolt://… (NEO4J_PASSWORD)

Prints, per hop count, the best of --repeat runs of each, their ratio, and whether both gave the same rows.
Measured 2026-12-03 on the 62 real graphs of ../shared/fixtures/real-graphs (docs/queries.md).
"""
from __future__ import annotations

import argparse
import time

from circuit_atlas.queries.registry import statement
from circuit_atlas.store import open_store

PRUNING = "  AND ($sign <> 'excitatory' OR r1.weight > 0)"


def variants(hops: int) -> dict[str, str]:
    pruned = statement(f"_common-paths-{hops}")
    lines = pruned.splitlines()
    assert sum(line.startswith(PRUNING) for line in lines) == 1, "the pruning line moved: update PRUNING"
    return {"filter paths after (baseline)": "\n".join(l for l in lines if not l.startswith(PRUNING)),
            "prune while walking": pruned}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with open_store(args.store, read_only=True) as store:
        for hops, min_weight in ((2, 0.25), (3, 0.25), (4, 0.5)):
            params = dict(min_weight=min_weight, token="", tag="", sign="excitatory", rank_by="strength", limit=50)
            best, rows, queries = {}, {}, variants(hops)
            for _ in range(args.repeat):
                for name, cypher in queries.items():
                    start = time.perf_counter()
                    rows[name] = store.query(cypher, params, timeout_s=600, max_memory="8G")
                    best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
            base, new = best.values()
            print(f"hops={hops} min_weight={min_weight}: " + ", ".join(f"{k} {v:.2f} s" for k, v in best.items())
                  + f"; {base / new:.2f}x; same rows: {len(set(map(repr, rows.values()))) == 1}")


if __name__ == "__main__":
    main()
