// Features one of whose stored labels (imported or automatic, with its evidence) contains a keyword (case-insensitive).
//
// n_graphs counts the graphs the feature occurs in. Half of search-features.
//
// Parameters:
//   $text: str               the keyword, e.g. "Austin"
//   $limit: int              rows returned
// Example row:
//   {"fkey": "mntss/gemma-scope-transcoders/20/15589", "layer": 20, "label": "\" is\" → say \" Texas\"", "source": "auto", "matched": "\" Texas\" +5.91, \" Austin\" +4.62", "n_graphs": 1}
MATCH (f:Feature)-[:HAS_LABEL]->(l:FeatureLabel)
WHERE toLower(l.text) CONTAINS toLower($text) OR toLower(l.inputs) CONTAINS toLower($text)
   OR toLower(l.logits) CONTAINS toLower($text) OR toLower(l.promotes) CONTAINS toLower($text)
WITH f, l.source AS source,
     CASE WHEN toLower(l.text) CONTAINS toLower($text) THEN l.text
          WHEN toLower(l.inputs) CONTAINS toLower($text) THEN l.inputs
          WHEN toLower(l.logits) CONTAINS toLower($text) THEN l.logits
          ELSE l.promotes END AS matched
OPTIONAL MATCH (f)<-[:OF_FEATURE]-(n:Node)
WITH f, source, matched, count(DISTINCT n.gid) AS n_graphs
RETURN f.key AS fkey, f.layer AS layer, f.label AS label, source, matched, n_graphs
ORDER BY n_graphs DESC, fkey, source
LIMIT $limit
