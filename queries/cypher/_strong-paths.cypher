// Recurring signed paths of $hops edges, embedding -> features -> logit, from the strong paths stored at ingest.
//
// The same answer as _common-paths-<hops> (which walks the edges), read from the Path nodes that
// ingest stores for every path whose edges all have |weight| >= 1.0 (aggregates.PATH_MIN_WEIGHT):
// a path has every edge >= $min_weight exactly when its bottleneck is, so any $min_weight >= 1.0 is
// answered here (the common-paths analysis walks the edges below that). f2 / f3 are null for shorter
// paths. $tag "" for all graphs (_strong-paths-tagged filters by a tag).
//
// Parameters:
//   $hops: int               edges per path, 2 to 4
//   $min_weight: float       only paths whose edges all have at least this |weight| (>= 1.0)
//   $token: str = ""         only paths ending in this logit token ("" for any)
//   $sign: str = "excitatory" "excitatory" (every edge > 0), "inhibitory" (strength < 0) or "all"
//   $rank_by: str = "strength" rank equally common paths by "strength" (|mean strength|) or "min" (bottleneck)
//   $limit: int = 25         rows returned
// Example row:
//   {"start_token": " Dallas", "f1": "mntss/gemma-scope-transcoders/20/15589", "f2": "mntss/gemma-scope-transcoders/23/12237", "f3": null, "end_token": " Austin", "signs": "+++", "n_graphs": 1, "n_paths": 2, "mean_strength": 412.5, "max_strength": 412.5, "max_bottleneck": 3.1}
MATCH (p:Path)
WHERE p.hops = $hops AND p.bottleneck >= $min_weight AND ($token = '' OR p.end_token = $token)
  AND ($sign = 'all' OR ($sign = 'excitatory' AND NOT p.signs CONTAINS '-') OR ($sign = 'inhibitory' AND p.strength < 0))
WITH p.start_token AS start_token, p.f1 AS f1, p.f2 AS f2, p.f3 AS f3, p.end_token AS end_token, p.signs AS signs, p.gid AS gid,
     max(abs(p.strength)) AS strongest, max(p.strength) AS hi, max(p.bottleneck) AS bottleneck, count(*) AS n_paths
WITH start_token, f1, f2, f3, end_token, signs, count(*) AS n_graphs, sum(n_paths) AS n_paths, avg(strongest) AS mean_abs,
     max(strongest) AS max_abs, max(hi) AS hi, max(bottleneck) AS max_bottleneck
WITH start_token, f1, f2, f3, end_token, signs, n_graphs, n_paths, max_bottleneck,
     CASE WHEN hi > 0 THEN 1.0 ELSE -1.0 END AS sign, mean_abs, max_abs
RETURN start_token, f1, f2, f3, end_token, signs, n_graphs, n_paths, sign * mean_abs AS mean_strength, sign * max_abs AS max_strength,
       max_bottleneck
ORDER BY n_graphs DESC, CASE WHEN $rank_by = 'min' THEN max_bottleneck ELSE mean_abs END DESC, start_token, f1, coalesce(f2, ''), coalesce(f3, ''), end_token, signs
LIMIT $limit
