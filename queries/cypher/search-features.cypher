// Features whose label contains a keyword (case-insensitive).
//
// Looks in the per-graph labels (clerps) of its occurrences, where graph files keep labels (the
// global Feature.label is copied from them at ingest); n_graphs counts the graphs whose label matched.
//
// Parameters:
//   $text: str               the keyword, e.g. "capital"
//   $limit: int = 50         rows returned
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/20/1454", "layer": 20, "label": "capital cities", "n_graphs": 3}
MATCH (n:Node)
WHERE n.fkey IS NOT NULL AND toLower(n.label) CONTAINS toLower($text)
WITH n.fkey AS fkey, max(n.label) AS label, count(DISTINCT n.gid) AS n_graphs
ORDER BY n_graphs DESC, fkey
LIMIT $limit
MATCH (f:Feature {key: fkey})
RETURN fkey, f.layer AS layer, label, n_graphs
ORDER BY n_graphs DESC, fkey
