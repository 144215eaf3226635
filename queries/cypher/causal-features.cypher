// Features with causal evidence: interventions on each feature alone, on how many prompts, and how strongly they moved the target.
//
// Only interventions that touched this one feature count (a supernode's runs are in
// causal-supernodes). Strongest mean |logit change| of the target token first.
//
// Parameters:
//   $op: str = ""            only this op ("ablate", "scale", ...; "" for all)
//   $min_prompts: int = 1    only features with interventions on at least this many prompts
//   $limit: int = 50         rows returned
// Example row:
//   {"fkey": "organisms/planted-plt-seed0/3/152", "op": "ablate", "target_token": "chocolate", "n_interventions": 12, "mean_logit_change": -6.3, "mean_prob_change": -0.85, "share_top_changed": 1.0, "n_prompts": 12}
MATCH (i:Intervention)-[x:INTERVENED_ON]->(f:Feature)
WHERE ($op = '' OR x.op = $op) AND NOT EXISTS { MATCH (i)-[:INTERVENED_ON]->(g:Feature) WHERE g.key <> f.key }
WITH f.key AS fkey, x.op AS op, i.target_token AS target_token, count(i) AS n_interventions,
     avg(i.logit_change) AS mean_logit_change, avg(i.prob_change) AS mean_prob_change,
     avg(CASE WHEN i.top_changed THEN 1.0 ELSE 0.0 END) AS share_top_changed, count(DISTINCT i.prompt) AS n_prompts
WHERE n_prompts >= $min_prompts
RETURN fkey, op, target_token, n_interventions, mean_logit_change, mean_prob_change, share_top_changed, n_prompts
ORDER BY abs(mean_logit_change) DESC, n_prompts DESC, fkey, op
LIMIT $limit
