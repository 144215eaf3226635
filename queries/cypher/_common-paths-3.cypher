// Recurring signed 3-hop paths embedding -> feature -> feature -> logit, keyed by start token, global features, end token and edge signs.
//
// Only edges with |weight| >= $min_weight are walked. A path's strength is the product of its signed
// weights, so its sign is the product of its edge signs (`signs`, "+" or "-" per edge). $sign picks
// "excitatory" paths (every edge excites), "inhibitory" ones (negative strength: the start token lowers
// the end logit through them) or "all" (double inhibitions, net positive, only here). Per graph the
// strongest such path counts (largest |strength|; bottleneck = min |weight|); mean_strength averages
// it over the graphs, keeping the sign. The `path` column is filled in by the common-paths analysis.
//
// For excitatory paths a negative edge is dropped while walking, not after: 1.4-2.3x faster on both
// engines than filtering whole paths (bench/paths_walk.py, 62 real graphs).
//
// Strength is 1.0 * w1 * w2 ...: the embedded engine multiplies two FLOAT (32-bit) weights in 32 bits,
// Neo4j in 64; promoted to double first, both agree (docs/store.md).
//
// Parameters:
//   $min_weight: float = 1.0 only edges at least this strong (|weight|)
//   $token: str = ""         only paths ending in this logit token ("" for any)
//   $tag: str = ""           only graphs with this tag, "key=value" ("" for all)
//   $sign: str = "excitatory" "excitatory" (every edge > 0), "inhibitory" (strength < 0) or "all"
//   $rank_by: str = "strength" rank equally common paths by "strength" (|mean strength|) or "min" (bottleneck)
//   $limit: int = 25         rows returned
// Example row:
//   {"start_token": " Dallas", "f1": "mntss/gemma-scope-transcoders/20/15589", "f2": "mntss/gemma-scope-transcoders/23/12237", "end_token": " Austin", "signs": "+++", "n_graphs": 1, "n_paths": 2, "mean_strength": 412.5, "max_strength": 412.5, "max_bottleneck": 3.1}
MATCH (e:Node)-[r1:EFFECT]->(a:Node)-[r2:EFFECT]->(b:Node)-[r3:EFFECT]->(l:Node)
WHERE e.kind = 'embedding' AND l.kind = 'logit' AND a.fkey IS NOT NULL AND b.fkey IS NOT NULL
  AND abs(r1.weight) >= $min_weight AND abs(r2.weight) >= $min_weight AND abs(r3.weight) >= $min_weight
  AND ($sign <> 'excitatory' OR r1.weight > 0) AND ($sign <> 'excitatory' OR r2.weight > 0) AND ($sign <> 'excitatory' OR r3.weight > 0)
  AND ($token = '' OR l.token = $token)
  AND ($tag = '' OR EXISTS { MATCH (g:Graph)-[:TAGGED]->(t:Tag) WHERE g.id = l.gid AND t.id = $tag })
WITH e.token AS start_token, a.fkey AS f1, b.fkey AS f2, l.token AS end_token, l.gid AS gid,
       CASE WHEN r1.weight < 0 THEN '-' ELSE '+' END +
       CASE WHEN r2.weight < 0 THEN '-' ELSE '+' END +
       CASE WHEN r3.weight < 0 THEN '-' ELSE '+' END AS signs,
       1.0 * r1.weight * r2.weight * r3.weight AS strength,
       CASE WHEN abs(r1.weight) < CASE WHEN abs(r2.weight) < abs(r3.weight) THEN abs(r2.weight) ELSE abs(r3.weight) END THEN abs(r1.weight) ELSE CASE WHEN abs(r2.weight) < abs(r3.weight) THEN abs(r2.weight) ELSE abs(r3.weight) END END AS bottleneck
WHERE $sign = 'all' OR ($sign = 'excitatory' AND signs = '+++') OR ($sign = 'inhibitory' AND strength < 0)
WITH start_token, f1, f2, end_token, signs, gid, max(abs(strength)) AS strongest, max(strength) AS hi, max(bottleneck) AS bottleneck, count(*) AS n_paths
WITH start_token, f1, f2, end_token, signs, count(*) AS n_graphs, sum(n_paths) AS n_paths, avg(strongest) AS mean_abs,
     max(strongest) AS max_abs, max(hi) AS hi, max(bottleneck) AS max_bottleneck
WITH start_token, f1, f2, end_token, signs, n_graphs, n_paths, max_bottleneck,
     CASE WHEN hi > 0 THEN 1.0 ELSE -1.0 END AS sign, mean_abs, max_abs
RETURN start_token, f1, f2, end_token, signs, n_graphs, n_paths, sign * mean_abs AS mean_strength, sign * max_abs AS max_strength,
       max_bottleneck
ORDER BY n_graphs DESC, CASE WHEN $rank_by = 'min' THEN max_bottleneck ELSE mean_abs END DESC, start_token, f1, f2, end_token, signs
LIMIT $limit
