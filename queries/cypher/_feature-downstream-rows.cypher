// One feature's downstream Neighbour rows (edges out of its occurrences, summed per neighbour over every graph),
// strongest summed |weight| first, without their neighbour's identity: feature-downstream looks up the
// identities (_neighbour-ends) and labels of the few it shows. Joined here, the embedded engine would
// scan every identity and every Feature to find them (660k and 650k at 10,000 realistic graphs).
//
// Parameters:
//   $fkey: str               the global feature key
//   $limit: int = 10         rows returned
// Example row:
//   {"end_id": 4211, "total_weight": 31.2, "total_abs_weight": 33.0, "n_edges": 40, "n_graphs": 38}
MATCH (f:Feature {key: $fkey})-[:HAS_DOWNSTREAM]->(a:Neighbour)
RETURN a.end_id AS end_id, a.weight AS total_weight, a.abs_weight AS total_abs_weight, a.n_edges AS n_edges,
       a.n_graphs AS n_graphs
ORDER BY total_abs_weight DESC
LIMIT $limit
