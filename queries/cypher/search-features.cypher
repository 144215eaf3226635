// Features whose label contains a keyword (case-insensitive).
//
// Looks in the global feature label and in every per-graph label (clerp) of its occurrences.
//
// Parameters:
//   $text: str               the keyword, e.g. "capital"
//   $limit: int = 50         rows returned
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/20/1454", "layer": 20, "label": "capital cities", "n_graphs": 3}
MATCH (f:Feature)<-[:OF_FEATURE]-(n:Node)
WHERE toLower(f.label) CONTAINS toLower($text) OR toLower(n.label) CONTAINS toLower($text)
WITH f, max(n.label) AS node_label, count(DISTINCT n.gid) AS n_graphs
RETURN f.key AS fkey, f.layer AS layer, CASE WHEN f.label = '' THEN node_label ELSE f.label END AS label, n_graphs
ORDER BY n_graphs DESC, fkey
LIMIT $limit
