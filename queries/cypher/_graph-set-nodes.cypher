// The nodes of a set of graphs, by node id, with their summed activation and the graphs holding them.
//
// Parameters:
//   $gids: list              graph ids
// Example row:
//   {"node_id": "1_12928_5", "kind": "feature", "fkey": "mntss/clt-gemma-2-2b-2.5M/1/12928", "activation": 4.25, "n_graphs": 1}
MATCH (g:Graph)-[:HAS_NODE]->(n:Node)
WHERE g.id IN $gids
RETURN n.node_id AS node_id, n.kind AS kind, n.fkey AS fkey, sum(n.activation) AS activation, count(*) AS n_graphs
