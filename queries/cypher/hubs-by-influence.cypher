// Features with the most summed influence on the logits across graphs.
//
// A node's `influence` is circuit-tracer's cumulative influence (the pruning score): the share of
// total influence on the logits covered by nodes at least as influential, so SMALLER is more
// important. Importance here is 1 - influence (near 1 for the top node of a graph, 0.2 at the
// default 0.8 pruning threshold), summed over all occurrences: recurrent *and* central features rank first.
//
// Parameters:
//   $limit: int = 25         rows returned
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/1/57794", "layer": 1, "label": "", "importance": 301.2, "best_influence": 0.02, "n_graphs": 57}
MATCH (n:Node)
WHERE n.fkey IS NOT NULL AND n.influence IS NOT NULL
WITH n.fkey AS fkey, sum(1.0 - n.influence) AS importance, min(n.influence) AS best_influence, count(DISTINCT n.gid) AS n_graphs
MATCH (f:Feature {key: fkey})
RETURN fkey, f.layer AS layer, f.label AS label, importance, best_influence, n_graphs
ORDER BY importance DESC, fkey
LIMIT $limit
