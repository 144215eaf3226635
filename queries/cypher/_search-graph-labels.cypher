// Features whose per-graph label (clerp, from graph files) contains a keyword (case-insensitive).
//
// n_graphs counts the graphs whose label matched. Half of search-features (the other half searches
// the features' stored labels).
//
// Parameters:
//   $text: str               the keyword, e.g. "capital"
//   $limit: int              rows returned
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/20/1454", "layer": 20, "label": "capital cities", "matched": "capital cities", "n_graphs": 3}
MATCH (n:Node)
WHERE n.fkey IS NOT NULL AND toLower(n.label) CONTAINS toLower($text)
WITH n.fkey AS fkey, max(n.label) AS matched, count(DISTINCT n.gid) AS n_graphs
ORDER BY n_graphs DESC, fkey
LIMIT $limit
MATCH (f:Feature {key: fkey})
RETURN fkey, f.layer AS layer, f.label AS label, matched, n_graphs
ORDER BY n_graphs DESC, fkey
