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
// disagree on log.) Grouping per (feature, graph)
// first counts graphs without count(DISTINCT); the Feature lookup comes after the LIMIT.
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
MATCH (n:Node)
WHERE n.fkey IS NOT NULL
WITH n_stored, n.fkey AS fkey, n.gid AS gid, count(*) AS occurrences, sum(n.activation) AS activation,
     count(n.activation) AS activations, min(n.pos) AS first_pos
MATCH (g:Graph {id: gid})
WITH n_stored, fkey, count(*) AS n_graphs, sum(occurrences) AS n_occurrences, sum(activation) / sum(activations) AS mean_activation,
     sum(occurrences * 1.0 / size(g.prompt_tokens)) AS positions, sum(CASE WHEN first_pos = 0 THEN 1 ELSE 0 END) AS on_bos
WITH n_stored, fkey, n_graphs, n_occurrences, mean_activation, positions / n_graphs AS position_share, on_bos
WHERE n_graphs >= $min_graphs AND ($skip_bos = false OR on_bos = 0) AND position_share <= $max_position_share
WITH n_stored, fkey, n_graphs, n_occurrences, mean_activation, position_share, on_bos,
     CASE WHEN $rank_by = 'specificity' THEN n_graphs * (1.0 - position_share) ELSE n_graphs * 1.0 END AS rank
ORDER BY rank DESC, n_occurrences DESC, fkey
LIMIT $limit
MATCH (f:Feature {key: fkey})
RETURN fkey, f.layer AS layer, f.label AS label, n_graphs, n_graphs * 1.0 / n_stored AS graph_share, n_occurrences,
       mean_activation, position_share, 1.0 - position_share AS specificity, log10(n_stored * 1.0 / n_graphs) * 2.302585092994046 AS idf, on_bos
ORDER BY rank DESC, n_occurrences DESC, fkey
