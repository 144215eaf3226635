// Features with the most summed |edge weight| across graphs.
//
// Sums |weight| over every edge into or out of each occurrence of the feature, in all graphs:
// how much direct effect flows through it in the corpus. Aggregates per (feature, graph) first
// (the planner is slow on one big join, see notes/embedded-cypher-engines.md).
//
// Parameters:
//   $limit: int = 25         rows returned
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/1/12928", "layer": 1, "label": "", "total_abs_weight": 1873.5, "n_graphs": 57, "n_edges": 4120}
MATCH (n:Node)-[e:EFFECT]-(:Node)
WHERE n.fkey IS NOT NULL
WITH n.fkey AS fkey, n.gid AS gid, sum(abs(e.weight)) AS w, count(*) AS edges
WITH fkey, sum(w) AS total_abs_weight, count(*) AS n_graphs, sum(edges) AS n_edges
MATCH (f:Feature {key: fkey})
RETURN fkey, f.layer AS layer, f.label AS label, total_abs_weight, n_graphs, n_edges
ORDER BY total_abs_weight DESC, fkey
LIMIT $limit
