// Recurring 4-hop paths embedding -> feature -> feature -> feature -> logit, keyed by their global features.
//
// Only edges with |weight| >= $min_weight are walked. Per graph the strongest such path counts
// (strength = product of |weight|, bottleneck = min |weight|).
//
// Weights enter as 1.0 * |w|: the embedded engine multiplies two FLOAT (32-bit) weights in 32 bits,
// Neo4j in 64; promoted to double, both agree (docs/store.md).
//
// Parameters:
//   $min_weight: float = 1.0 only edges at least this strong (|weight|)
//   $token: str = ""         only paths ending in this logit token ("" for any)
//   $tag: str = ""           only graphs with this tag, "key=value" ("" for all)
//   $rank_by: str = "product" rank equally common paths by "product" or "min" strength
//   $limit: int = 25         rows returned
// Example row:
//   {"f1": "mntss/clt-gemma-2-2b-2.5M/0/18753", "f2": "mntss/clt-gemma-2-2b-2.5M/1/12928", "f3": "mntss/clt-gemma-2-2b-2.5M/3/4410", "n_graphs": 12, "n_paths": 15, "mean_strength": 20.4, "max_strength": 80.0, "max_bottleneck": 2.1}
MATCH (e:Node)-[r1:EFFECT]->(a:Node)-[r2:EFFECT]->(b:Node)-[r3:EFFECT]->(c:Node)-[r4:EFFECT]->(l:Node)
WHERE e.kind = 'embedding' AND l.kind = 'logit' AND a.fkey IS NOT NULL AND b.fkey IS NOT NULL AND c.fkey IS NOT NULL
  AND abs(r1.weight) >= $min_weight AND abs(r2.weight) >= $min_weight
  AND abs(r3.weight) >= $min_weight AND abs(r4.weight) >= $min_weight
  AND ($token = '' OR l.token = $token)
  AND ($tag = '' OR EXISTS { MATCH (g:Graph)-[:TAGGED]->(t:Tag) WHERE g.id = l.gid AND t.id = $tag })
WITH a.fkey AS f1, b.fkey AS f2, c.fkey AS f3, l.gid AS gid,
     1.0 * abs(r1.weight) AS w1, 1.0 * abs(r2.weight) AS w2, 1.0 * abs(r3.weight) AS w3, 1.0 * abs(r4.weight) AS w4
WITH f1, f2, f3, gid, w1 * w2 * w3 * w4 AS strength,
     CASE WHEN w1 < w2 THEN w1 ELSE w2 END AS m12, CASE WHEN w3 < w4 THEN w3 ELSE w4 END AS m34
WITH f1, f2, f3, gid, strength, CASE WHEN m12 < m34 THEN m12 ELSE m34 END AS bottleneck
WITH f1, f2, f3, gid, max(strength) AS strength, max(bottleneck) AS bottleneck, count(*) AS n_paths
WITH f1, f2, f3, count(*) AS n_graphs, sum(n_paths) AS n_paths, avg(strength) AS mean_strength,
     max(strength) AS max_strength, max(bottleneck) AS max_bottleneck
RETURN f1, f2, f3, n_graphs, n_paths, mean_strength, max_strength, max_bottleneck
ORDER BY n_graphs DESC, CASE WHEN $rank_by = 'min' THEN max_bottleneck ELSE mean_strength END DESC, f1, f2, f3
LIMIT $limit
