// The direct effect of each feature on each logit token, summed over every graph (signed).
//
// Parameters:
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/25/4717", "token": " cold", "weight": 12.5, "n_edges": 3, "n_graphs": 3}
MATCH (n:Node)-[e:EFFECT]->(l:Node)
WHERE n.fkey IS NOT NULL AND l.kind = 'logit'
RETURN n.fkey AS fkey, l.token AS token, sum(e.weight) AS weight, count(*) AS n_edges, count(DISTINCT l.gid) AS n_graphs
