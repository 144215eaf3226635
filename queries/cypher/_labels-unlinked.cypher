// Stored labels whose feature is in the store but not yet linked to them (labels imported before its graphs).
//
// Parameters:
// Example row:
//   {"id": "mntss/clt-gemma-2-2b-2.5M/20/1454|csv:mine.csv", "fkey": "mntss/clt-gemma-2-2b-2.5M/20/1454"}
MATCH (l:FeatureLabel)
WHERE NOT EXISTS { MATCH (l)<-[:HAS_LABEL]-(:Feature) }
MATCH (f:Feature {key: l.fkey})
RETURN l.id AS id, l.fkey AS fkey
