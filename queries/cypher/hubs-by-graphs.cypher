// Features that recur in the most graphs.
//
// One row per global feature: in how many graphs it occurs (at any position), how many
// occurrences in all, and its mean activation.
//
// Parameters:
//   $min_graphs: int = 2     only features found in at least this many graphs
//   $limit: int = 25         rows returned
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/1/12928", "layer": 1, "label": "", "n_graphs": 57, "n_occurrences": 712, "mean_activation": 4.31}
MATCH (n:Node)
WHERE n.fkey IS NOT NULL
WITH n.fkey AS fkey, count(*) AS n_occurrences, avg(n.activation) AS mean_activation, count(DISTINCT n.gid) AS n_graphs
WHERE n_graphs >= $min_graphs
MATCH (f:Feature {key: fkey})
RETURN fkey, f.layer AS layer, f.label AS label, n_graphs, n_occurrences, mean_activation
ORDER BY n_graphs DESC, n_occurrences DESC, fkey
LIMIT $limit
