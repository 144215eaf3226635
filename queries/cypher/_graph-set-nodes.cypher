// The nodes of a set of graphs, by node id, with their summed activation and the graphs holding them.
//
// activation is null when no occurrence has one (Neo4j's sum() of nulls is 0, the embedded engine's null).
//
// Parameters:
//   $gids: list              graph ids
// Example row:
//   {"node_id": "1_12928_5", "kind": "feature", "fkey": "mntss/clt-gemma-2-2b-2.5M/1/12928", "activation": 4.25, "n_graphs": 1}
MATCH (g:Graph)-[:HAS_NODE]->(n:Node)
WHERE g.id IN $gids
RETURN n.node_id AS node_id, n.kind AS kind, n.fkey AS fkey, CASE WHEN count(n.activation) = 0 THEN null ELSE sum(n.activation) END AS activation, count(*) AS n_graphs
