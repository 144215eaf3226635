"""Audit analysis speed on real graphs: summarise the 57 Gemma-2-2B graphs, then run the analyses.

Phases timed (CPU seconds, best of 3; the machine is shared):
  read       read_graph_file of every graph (the cost the audit adds nothing to)
  summarise  graph -> GraphSummary, incl. the all-path influence on a target logit
  analyse    enrichment + control tokens + drivers + fusion over the summaries (half the graphs
             as "suspect", half as "control", every third also "generic")
Baseline measured in the same run: the enrichment p-values with a loop of scipy.stats.fisher_exact
instead of the vectorised hypergeometric tail.

    PYTHONPATH=. python bench/bench_audit.py [DIR]   # DIR defaults to ../shared/fixtures/real-graphs/gemma-2-2b-clt-hp
"""
from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

from circuit_atlas.audit.analyses import AnalysisOptions
from circuit_atlas.audit.result import analyse
from circuit_atlas.audit.stats import fisher_greater
from circuit_atlas.audit.summary import summarize
from circuit_atlas.ingest.formats import read_graph_file

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared/fixtures/real-graphs/gemma-2-2b-clt-hp"


def best_of(fn, repeat: int = 3):
    times, out = [], None
    for _ in range(repeat):
        t = time.process_time()
        out = fn()
        times.append(time.process_time() - t)
    return min(times), out


def main() -> None:
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR
    paths = sorted(directory.glob("*.json"))
    if not paths:
        sys.exit(f"{directory}: no graph JSON files (pass the directory of the real graphs)")
    t_read, graphs = best_of(lambda: [read_graph_file(p) for p in paths], repeat=1)
    sets = ["suspect" if i % 2 == 0 else "control" for i in range(len(graphs))]

    def summarise_all():
        out = []
        for i, (s, g) in enumerate(zip(sets, graphs)):
            top = max((n for n in g.nodes if n.kind == "logit"), key=lambda n: n.logit_prob or 0)
            out.append(summarize(g, s, (top.token,)))
            if i % 3 == 0:
                out.append(summarize(g, "generic"))
        return out

    t_sum, summaries = best_of(summarise_all)
    opts = AnalysisOptions()
    t_an, result = best_of(lambda: analyse(summaries, opts, audit_id="bench", created="now"))

    suspect = [s for s in summaries if s.set == "suspect"]
    control = [s for s in summaries if s.set == "control"]
    a = Counter(k for s in suspect for k in s.max_activation)
    c = Counter(k for s in control for k in s.max_activation)
    keys = sorted(set(a) | set(c))
    t_vec, _ = best_of(lambda: fisher_greater([a[k] for k in keys], len(suspect), [c[k] for k in keys], len(control)))

    def scipy_loop():
        from scipy.stats import fisher_exact
        return [fisher_exact([[a[k], len(suspect) - a[k]], [c[k], len(control) - c[k]]], "greater").pvalue
                for k in keys]

    t_loop, _ = best_of(scipy_loop, repeat=1)
    n_edges = sum(g.n_edges for g in graphs)
    print(f"{len(graphs)} graphs, {n_edges:,} edges, {len(keys):,} distinct features, {len(result.ranked)} ranked")
    print(f"read       {t_read:7.2f} s")
    print(f"summarise  {t_sum:7.2f} s  ({1000 * t_sum / len(summaries):.1f} ms per summary)")
    print(f"analyse    {t_an:7.2f} s")
    print(f"fisher: vectorised {1000 * t_vec:.1f} ms vs scipy.fisher_exact loop {1000 * t_loop:.0f} ms "
          f"-> {t_loop / max(t_vec, 1e-9):.0f}x")


if __name__ == "__main__":
    main()
