// The logit tokens of the stored graphs, with how many graphs have each (to explain an empty answer).
//
// Parameters:
// Example row:
//   {"token": " Austin", "n_graphs": 1}
MATCH (n:Node)
WHERE n.kind = 'logit'
RETURN n.token AS token, count(DISTINCT n.gid) AS n_graphs
ORDER BY n_graphs DESC, token
