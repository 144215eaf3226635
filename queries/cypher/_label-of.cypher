// The layer and the label one feature shows (Feature.label): a lookup by the key's index. Few keys are
// looked up so, one by one (analyses.feature_labels), rather than with _labels-of, which the embedded
// engine answers by scanning every Feature (0.5 s at 650,000 features).
//
// Parameters:
//   $fkey: str               the global feature key
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/1/12928", "layer": 1, "label": "\" to\" → say \" the\""}
MATCH (f:Feature {key: $fkey})
RETURN f.key AS fkey, f.layer AS layer, f.label AS label
