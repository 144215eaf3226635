// One global feature, with how many graphs and occurrences hold it (its aggregates kept at ingest).
//
// Parameters:
//   $fkey: str               the global feature key
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/1/12928", "transcoder_set": "mntss/clt-gemma-2-2b-2.5M", "layer": 1, "feature": 12928, "label": "", "n_graphs": 57, "n_occurrences": 712}
MATCH (f:Feature {key: $fkey})
RETURN f.key AS fkey, f.transcoder_set AS transcoder_set, f.layer AS layer, f.feature AS feature, f.label AS label,
       f.n_graphs AS n_graphs, f.n_occurrences AS n_occurrences
