// Link every stored label not linked yet to its feature, where the store now holds that feature.
//
// One join of the two tables, not a statement per label: the embedded engine looked each label's
// feature up by scanning (26 s per 5,000 labels at 1,000 graphs); joined, 98k labels link in 0.3 s.
//
// Parameters:
// Example row:
//   {}
MATCH (l:FeatureLabel), (f:Feature)
WHERE l.fkey = f.key AND NOT EXISTS { MATCH (l)<-[:HAS_LABEL]-(:Feature) }
CREATE (f)-[:HAS_LABEL]->(l)
