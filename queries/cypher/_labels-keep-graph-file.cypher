// Keep the label a graph file gave a feature (its clerp, which ingest wrote to Feature.label) as a stored
// label of source $graph_file, for every feature that has none from a graph file yet.
//
// Feature.label is a clerp when no label of the feature has that text: a label shown by _labels-show is
// one of its labels' texts, and one cleared by _labels-unshow-source is null. Run after _labels-link, so
// that a graph-file label kept before its feature was deleted and ingested again is linked, not made twice.
// One statement in the store, not the features read into Python (648k rows at 10,000 graphs).
//
// Parameters:
//   $graph_file: str         the graph files' labels' source ("graph file")
//   $created: str            ISO-8601 UTC time of this run
// Example row:
//   {}
MATCH (f:Feature)
WHERE f.label IS NOT NULL AND f.label <> ''
  AND NOT EXISTS {
    MATCH (f)-[:HAS_LABEL]->(o:FeatureLabel)
    WHERE o.source = $graph_file OR o.text = f.label
  }
CREATE (f)-[:HAS_LABEL]->(:FeatureLabel {id: f.key + '|' + $graph_file, fkey: f.key, source: $graph_file,
                                         text: f.label, inputs: '', logits: '', promotes: '', created: $created})
