// The candidates of supernode proposals: the $max_features most recurrent features in at least $min_graphs graphs.
//
// Recurrence is the Feature aggregate n_graphs kept at ingest (no scan of the nodes); ties by key.
//
// Parameters:
//   $min_graphs: int         only features in at least this many graphs
//   $max_features: int       at most this many features, most recurrent first
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/1/12928", "layer": 1, "n_graphs": 41}
MATCH (f:Feature)
WHERE f.n_graphs >= $min_graphs AND f.n_graphs > 0
RETURN f.key AS fkey, f.layer AS layer, f.n_graphs AS n_graphs
ORDER BY n_graphs DESC, fkey
LIMIT $max_features
