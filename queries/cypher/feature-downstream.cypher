// The strongest direct outputs of one feature, aggregated across all graphs it appears in.
//
// Targets are grouped like feature-upstream: features by key (with their label), logits by token, errors by layer.
// Reads the Neighbour aggregates kept at ingest (schema.NEIGHBOUR), like feature-upstream.
//
// Parameters:
//   $fkey: str               the global feature key
//   $limit: int = 10         rows returned
// Example row:
//   {"kind": "logit", "layer": 26, "fkey": null, "label": null, "token": " cold", "total_weight": 12.5, "total_abs_weight": 12.5, "n_edges": 3, "n_graphs": 3}
MATCH (f:Feature {key: $fkey})-[:HAS_NEIGHBOUR]->(a:Neighbour)
WHERE a.dir = 1
MATCH (e:NeighbourEnd {id: a.end_id})
WITH e.kind AS kind, e.layer AS layer, e.fkey AS fkey, e.token AS token,
     a.weight AS total_weight, a.abs_weight AS total_abs_weight, a.n_edges AS n_edges, a.n_graphs AS n_graphs
ORDER BY total_abs_weight DESC, kind, layer, coalesce(fkey, ''), coalesce(token, '')
LIMIT $limit
OPTIONAL MATCH (x:Feature {key: fkey})
RETURN kind, layer, fkey, x.label AS label, token, total_weight, total_abs_weight, n_edges, n_graphs
ORDER BY total_abs_weight DESC, kind, layer, coalesce(fkey, ''), coalesce(token, '')
