// Link every stored label not linked yet to its feature, where the store now holds that feature.
//
// One join of the two tables, not a statement per label: the embedded engine looked each label's
// feature up on its own (26 s per 5,000 labels at 1,000 graphs, 79 s for all 98k as one MATCH
// without the WITH); after `WITH l` it hash-joins them, 98k labels in 0.3 s. (Not one MATCH of both
// patterns: Neo4j's linter flags it as a cartesian product.)
//
// Parameters:
// Example row:
//   {}
MATCH (l:FeatureLabel)
WHERE NOT EXISTS { MATCH (l)<-[:HAS_LABEL]-(:Feature) }
WITH l
MATCH (f:Feature)
WHERE f.key = l.fkey
CREATE (f)-[:HAS_LABEL]->(l)
