// The layer and the label each of the features $keys shows (Feature.label).
//
// Parameters:
//   $keys: list              global feature keys; not empty
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/1/12928", "layer": 1, "label": "\" to\" → say \" the\""}
MATCH (f:Feature)
WHERE f.key IN $keys
RETURN f.key AS fkey, f.layer AS layer, f.label AS label
