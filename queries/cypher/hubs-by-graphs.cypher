// Features that recur in the most graphs, with how specific they are (the positions they sit on).
//
// One row per global feature: in how many graphs it occurs (at any position) and its share of the
// graphs, its occurrences and mean activation, and where it sits: `position_share` is, averaged over
// the graphs it occurs in, the share of the prompt's positions it is active at (1.0: on every token,
// like template features; 1/n: on one token of n); `specificity` = 1 - position_share; `idf` =
// ln(graphs in the store / n_graphs); `on_bos` counts the graphs where it sits on the first position
// (the BOS token). $skip_bos leaves out features with on_bos > 0, $max_position_share those on more of
// the positions (0.99 drops features on every position). rank_by="specificity" ranks by
// n_graphs x specificity (recurrent and specific) instead of n_graphs. (ln is log10 x ln 10: the engines
// disagree on log.) Reads the Feature aggregates kept at ingest (n_graphs, n_occurrences, position_sum,
// on_bos, act_sum / act_n: circuit_atlas/store/aggregates.py), so it scans features, not occurrences.
//
// Parameters:
//   $min_graphs: int = 2     only features found in at least this many graphs
//   $skip_bos: bool = false  leave out features that sit on the first (BOS) position of any graph
//   $max_position_share: float = 1.0 leave out features on a larger share of their prompts' positions
//   $rank_by: str = "graphs" "graphs" (n_graphs) or "specificity" (n_graphs x specificity)
//   $limit: int = 25         rows returned
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/1/12928", "layer": 1, "label": "\" to\" → say \" the\"", "n_graphs": 57, "graph_share": 0.98, "n_occurrences": 682, "mean_activation": 10.6, "position_share": 0.92, "specificity": 0.08, "idf": 0.02, "on_bos": 0}
MATCH (g:Graph)
WITH count(*) AS n_stored
MATCH (f:Feature)
WHERE f.n_graphs > 0 AND f.n_graphs >= $min_graphs AND ($skip_bos = false OR f.on_bos = 0)
  AND f.position_sum / f.n_graphs <= $max_position_share
WITH n_stored, f, f.position_sum / f.n_graphs AS position_share,
     CASE WHEN $rank_by = 'specificity' THEN f.n_graphs * (1.0 - f.position_sum / f.n_graphs) ELSE f.n_graphs * 1.0 END AS rank
ORDER BY rank DESC, f.n_occurrences DESC, f.key
LIMIT $limit
RETURN f.key AS fkey, f.layer AS layer, f.label AS label, f.n_graphs AS n_graphs, f.n_graphs * 1.0 / n_stored AS graph_share,
       f.n_occurrences AS n_occurrences, CASE WHEN f.act_n > 0 THEN f.act_sum / f.act_n END AS mean_activation,
       position_share, 1.0 - position_share AS specificity, log10(n_stored * 1.0 / f.n_graphs) * 2.302585092994046 AS idf,
       f.on_bos AS on_bos
ORDER BY rank DESC, n_occurrences DESC, fkey
