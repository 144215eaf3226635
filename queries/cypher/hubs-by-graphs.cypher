// Features that recur in the most graphs.
//
// One row per global feature: in how many graphs it occurs (at any position), how many
// occurrences in all, and its mean activation. Grouping per (feature, graph) first counts graphs
// without count(DISTINCT); the Feature lookup comes after the LIMIT (both measured faster).
//
// Parameters:
//   $min_graphs: int = 2     only features found in at least this many graphs
//   $limit: int = 25         rows returned
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/1/12928", "layer": 1, "label": "", "n_graphs": 57, "n_occurrences": 712, "mean_activation": 4.31}
MATCH (n:Node)
WHERE n.fkey IS NOT NULL
WITH n.fkey AS fkey, n.gid AS gid, count(*) AS occurrences, sum(n.activation) AS activation, count(n.activation) AS activations
WITH fkey, count(*) AS n_graphs, sum(occurrences) AS n_occurrences, sum(activation) / sum(activations) AS mean_activation
WHERE n_graphs >= $min_graphs
WITH fkey, n_graphs, n_occurrences, mean_activation
ORDER BY n_graphs DESC, n_occurrences DESC, fkey
LIMIT $limit
MATCH (f:Feature {key: fkey})
RETURN fkey, f.layer AS layer, f.label AS label, n_graphs, n_occurrences, mean_activation
ORDER BY n_graphs DESC, n_occurrences DESC, fkey
