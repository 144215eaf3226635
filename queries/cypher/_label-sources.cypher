// The sources of the labels of stored features, with how many each has (to explain an empty answer).
//
// Only labels linked to a feature count, as in feature-labels (an imported label waits unlinked
// until its feature is ingested).
//
// Parameters:
// Example row:
//   {"source": "auto", "n": 5120}
MATCH (:Feature)-[:HAS_LABEL]->(l:FeatureLabel)
RETURN l.source AS source, count(*) AS n
ORDER BY source
