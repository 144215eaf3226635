// Features with the most summed influence on the logits across graphs.
//
// A node's `influence` is circuit-tracer's cumulative influence (the pruning score): the share of
// total influence on the logits covered by nodes at least as influential, so SMALLER is more
// important. Importance here is 1 - influence (near 1 for the top node of a graph, 0.2 at the
// default 0.8 pruning threshold), summed over all occurrences: recurrent *and* central features rank first.
// Reads the Feature aggregates kept at ingest (importance, best_influence, infl_graphs: the graphs where an
// occurrence has an influence; circuit_atlas/store/aggregates.py).
//
// Parameters:
//   $limit: int = 25         rows returned
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/1/57794", "layer": 1, "label": "", "importance": 301.2, "best_influence": 0.02, "n_graphs": 57}
MATCH (f:Feature)
WHERE f.infl_graphs > 0
RETURN f.key AS fkey, f.layer AS layer, f.label AS label, f.importance AS importance, f.best_influence AS best_influence,
       f.infl_graphs AS n_graphs
ORDER BY importance DESC, fkey
LIMIT $limit
