// Clear the label a feature shows where it is one of a source's labels, before they are deleted
// (_labels-delete-source): the next _labels-show chooses again among the labels left and the new ones.
// Without it, a replaced label's old text would stay shown, and look like a graph file's label.
//
// Parameters:
//   $source: str             the labels' source, e.g. "auto" or "csv:mine.csv"
// Example row:
//   {}
MATCH (f:Feature)-[:HAS_LABEL]->(l:FeatureLabel)
WHERE l.source = $source AND f.label = l.text
SET f.label = NULL
