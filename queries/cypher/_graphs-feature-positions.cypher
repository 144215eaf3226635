// Where features sit in the graphs $gids: their occurrences counted per graph and token position
// (input of automatic labels, read a batch of graphs at a time: on 10,000 graphs the whole corpus is
// 4.4M rows, over the row cap).
//
// Parameters:
//   $gids: list              graph ids
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/1/12928", "gid": "3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6", "pos": 3, "n": 1}
MATCH (g:Graph)-[:HAS_NODE]->(n:Node)
WHERE g.id IN $gids AND n.fkey IS NOT NULL
RETURN n.fkey AS fkey, g.id AS gid, n.pos AS pos, count(*) AS n
