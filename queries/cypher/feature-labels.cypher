// Every label of one feature (or of all features), with its source: which one it shows, and the evidence of automatic ones.
//
// `shown` is true for the label the feature shows in every query (Feature.label): a user's imported
// label wins over a graph file's label (clerp), which wins over the automatic one. Automatic labels
// carry their evidence: `inputs` (prompt tokens the feature sits on, with counts), `logits` (logit
// tokens its direct edges drive, signed summed weight) and `promotes` (tokens its decoder promotes
// through the unembedding, when `labels auto` had the model).
//
// Parameters:
//   $fkey: str = ""          a global feature key; "" for every labelled feature
//   $source: str = ""        only labels from this source ("auto", "neuronpedia:<file>", ...); "" for all
//   $limit: int = 100        rows returned
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/20/15589", "layer": 20, "source": "auto", "text": "\" Dallas\" → say \" Texas\"", "shown": true, "inputs": "\" Dallas\" ×1", "logits": "\" Texas\" +2.1", "promotes": ""}
MATCH (f:Feature)-[:HAS_LABEL]->(l:FeatureLabel)
WHERE ($fkey = '' OR f.key = $fkey) AND ($source = '' OR l.source = $source)
RETURN f.key AS fkey, f.layer AS layer, l.source AS source, l.text AS text, f.label = l.text AS shown,
       l.inputs AS inputs, l.logits AS logits, l.promotes AS promotes
ORDER BY fkey, shown DESC, source
LIMIT $limit
