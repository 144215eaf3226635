// Link stored labels to their feature.
//
// (Two statements, not one MERGE of node and relationship: see statements.LINK_TAGS.)
//
// Parameters:
//   $rows: list              {id, fkey} per label
// Example row:
//   {}
UNWIND $rows AS r
MATCH (f:Feature {key: r.fkey})
MATCH (l:FeatureLabel {id: r.id})
MERGE (f)-[:HAS_LABEL]->(l)
