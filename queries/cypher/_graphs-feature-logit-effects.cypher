// The direct effect of each feature on each logit token in the graphs $gids, summed (signed); read a
// batch of graphs at a time (on 10,000 graphs the whole corpus is 6.4M rows, over the row cap).
//
// Parameters:
//   $gids: list              graph ids
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/25/4717", "token": " cold", "weight": 12.5}
MATCH (g:Graph)-[:HAS_NODE]->(l:Node)<-[e:EFFECT]-(n:Node)
WHERE g.id IN $gids AND l.kind = 'logit' AND n.fkey IS NOT NULL
RETURN n.fkey AS fkey, l.token AS token, sum(e.weight) AS weight
