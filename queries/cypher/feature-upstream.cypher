// The strongest direct inputs of one feature, aggregated across all graphs it appears in.
//
// Inputs are grouped by what they are globally: a feature by its key, an embedding or logit by its
// token, an error node by its layer. Ranked by summed |weight| over graphs; `label` is a feature's label.
//
// Parameters:
//   $fkey: str               the global feature key
//   $limit: int = 10         rows returned
// Example row:
//   {"kind": "feature", "layer": 0, "fkey": "mntss/clt-gemma-2-2b-2.5M/0/18753", "label": "\"The\"", "token": null, "total_weight": 31.2, "total_abs_weight": 33.0, "n_edges": 40, "n_graphs": 38}
MATCH (f:Feature {key: $fkey})-[:HAS_NEIGHBOUR]->(a:Neighbour)
WHERE a.dir = 0
MATCH (e:NeighbourEnd {id: a.end_id})
WITH e.kind AS kind, e.layer AS layer, e.fkey AS fkey, e.token AS token,
     a.weight AS total_weight, a.abs_weight AS total_abs_weight, a.n_edges AS n_edges, a.n_graphs AS n_graphs
ORDER BY total_abs_weight DESC, kind, layer, coalesce(fkey, ''), coalesce(token, '')
LIMIT $limit
OPTIONAL MATCH (x:Feature {key: fkey})
RETURN kind, layer, fkey, x.label AS label, token, total_weight, total_abs_weight, n_edges, n_graphs
ORDER BY total_abs_weight DESC, kind, layer, coalesce(fkey, ''), coalesce(token, '')
