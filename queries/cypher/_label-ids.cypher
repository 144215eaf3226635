// The ids of the stored labels of one source (store_labels adds only labels a source does not have yet).
//
// Parameters:
//   $source: str             the labels' source, e.g. "graph file"
// Example row:
//   {"id": "mntss/clt-gemma-2-2b-2.5M/20/1454|graph file"}
MATCH (l:FeatureLabel)
WHERE l.source = $source
RETURN l.id AS id
