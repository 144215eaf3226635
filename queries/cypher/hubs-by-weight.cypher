// Features with the most summed |edge weight| across graphs.
//
// Sums |weight| over every edge into or out of each occurrence of the feature, in all graphs:
// how much direct effect flows through it in the corpus. Reads the Feature aggregates kept at ingest
// (abs_weight, n_edges, edge_graphs: circuit_atlas/store/aggregates.py); n_graphs counts the graphs where
// an occurrence has an edge.
//
// Parameters:
//   $limit: int = 25         rows returned
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/1/12928", "layer": 1, "label": "", "total_abs_weight": 1873.5, "n_graphs": 57, "n_edges": 4120}
MATCH (f:Feature)
WHERE f.edge_graphs > 0
RETURN f.key AS fkey, f.layer AS layer, f.label AS label, f.abs_weight AS total_abs_weight, f.edge_graphs AS n_graphs,
       f.n_edges AS n_edges
ORDER BY total_abs_weight DESC, fkey
LIMIT $limit
