// Features found in at least $min_graphs graphs, with each graph they occur in and their importance there.
//
// Importance = 1 - best cumulative influence in that graph (see hubs-by-influence). Keeps the
// $max_features most recurrent features: the candidates for supernode proposals.
//
// Parameters:
//   $min_graphs: int         only features in at least this many graphs
//   $max_features: int       at most this many features, most recurrent first
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/1/12928", "layer": 1, "gid": "3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6", "importance": 0.61}
MATCH (n:Node)
WHERE n.fkey IS NOT NULL
WITH n.fkey AS fkey, count(DISTINCT n.gid) AS n_graphs
WHERE n_graphs >= $min_graphs
WITH fkey, n_graphs
ORDER BY n_graphs DESC, fkey
LIMIT $max_features
MATCH (f:Feature {key: fkey})<-[:OF_FEATURE]-(n:Node)
RETURN fkey, f.layer AS layer, n.gid AS gid, max(1.0 - coalesce(n.influence, 1.0)) AS importance
