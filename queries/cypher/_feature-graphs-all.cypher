// Features found in at least $min_graphs graphs, with each graph they occur in and their importance there.
//
// Importance = 1 - best cumulative influence in that graph (see hubs-by-influence). Keeps the
// $max_features most recurrent features: the candidates for supernode proposals. Recurrence is the
// Feature aggregate n_graphs kept at ingest, and each candidate's graphs come from its own
// OF_FEATURE list (which carries the occurrence's graph and influence): no scan of the nodes.
//
// Parameters:
//   $min_graphs: int         only features in at least this many graphs
//   $max_features: int       at most this many features, most recurrent first
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/1/12928", "layer": 1, "gid": "3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6", "importance": 0.61}
MATCH (f:Feature)
WHERE f.n_graphs >= $min_graphs AND f.n_graphs > 0
WITH f
ORDER BY f.n_graphs DESC, f.key
LIMIT $max_features
MATCH (f)<-[o:OF_FEATURE]-(:Node)
RETURN f.key AS fkey, f.layer AS layer, o.gid AS gid, max(1.0 - coalesce(o.influence, 1.0)) AS importance
