// The edges of a set of graphs, by (source node id, target node id), with their summed weight.
//
// Parameters:
//   $gids: list              graph ids
// Example row:
//   {"source": "E_2_0", "target": "0_19204_1", "weight": 1.28, "n_graphs": 1}
MATCH (g:Graph)-[:HAS_NODE]->(a:Node)-[e:EFFECT]->(b:Node)
WHERE g.id IN $gids
RETURN a.node_id AS source, b.node_id AS target, sum(e.weight) AS weight, count(*) AS n_graphs
