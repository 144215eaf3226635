// The (model, transcoder set) pairs of the stored graphs.
//
// Parameters:
// Example row:
//   {"model": "gemma-2-2b", "transcoder_set": "mntss/clt-gemma-2-2b-2.5M", "n_graphs": 57}
MATCH (g:Graph)
RETURN g.model AS model, g.transcoder_set AS transcoder_set, count(*) AS n_graphs
ORDER BY model, transcoder_set
