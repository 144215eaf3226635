// Delete every label of one source, and its links (before store_labels stores the source's new labels).
//
// Parameters:
//   $source: str             the labels' source, e.g. "auto" or "csv:mine.csv"
// Example row:
//   {}
MATCH (l:FeatureLabel)
WHERE l.source = $source
DETACH DELETE l
