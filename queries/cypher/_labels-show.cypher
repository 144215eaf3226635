// Set the label each labelled feature shows (Feature.label, the one every query returns): the latest
// user's label, else its graph file's label, else the automatic one.
//
// Each linked label has a rank text, "2|created|source" for a user's label, "1|…" for a graph file's,
// "0|…" for the automatic one (created is an ISO time, so text order is time order); the label no other
// label of its feature outranks wins. Run in its own transaction, after _labels-link's: in the
// transaction that created the links, the embedded engine's SET wrote one feature's label onto another.
//
// Parameters:
//   $auto: str               the automatic labels' source ("auto")
//   $graph_file: str         the graph files' labels' source ("graph file")
// Example row:
//   {}
MATCH (f:Feature)-[:HAS_LABEL]->(l:FeatureLabel)
WHERE (f.label IS NULL OR f.label <> l.text)
  AND NOT EXISTS {
    MATCH (f)-[:HAS_LABEL]->(o:FeatureLabel)
    WHERE CASE WHEN o.source = $auto THEN '0' WHEN o.source = $graph_file THEN '1' ELSE '2' END + '|' + o.created + '|' + o.source
        > CASE WHEN l.source = $auto THEN '0' WHEN l.source = $graph_file THEN '1' ELSE '2' END + '|' + l.created + '|' + l.source
  }
SET f.label = l.text
