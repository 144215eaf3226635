// Supernodes with causal evidence: how many prompts their interventions ran on, and how strongly they moved the target.
//
// Every (:Intervention) linked to a supernode counts for it, under the role it played there
// (suppress, inject, ablate, ...). The effect is measured on each run's target token: mean change of
// its logit and probability, and how often the top answer changed. Strongest mean |logit change| first.
//
// Parameters:
//   $role: str = ""          only this role ("" for all)
//   $min_prompts: int = 1    only supernodes with interventions on at least this many prompts
//   $limit: int = 50         rows returned
// Example row:
//   {"supernode": "tag/country=zot", "name": "country=zot", "role": "ablate", "n_interventions": 9, "mean_logit_change": -4.2, "mean_prob_change": -0.61, "share_top_changed": 0.78, "n_prompts": 9}
MATCH (i:Intervention)-[x:ON_SUPERNODE]->(s:Supernode)
WHERE $role = '' OR x.role = $role
WITH s, x.role AS role, i
WITH s.id AS supernode, s.name AS name, role, count(i) AS n_interventions,
     avg(i.logit_change) AS mean_logit_change, avg(i.prob_change) AS mean_prob_change,
     avg(CASE WHEN i.top_changed THEN 1.0 ELSE 0.0 END) AS share_top_changed, count(DISTINCT i.prompt) AS n_prompts
WHERE n_prompts >= $min_prompts
RETURN supernode, name, role, n_interventions, mean_logit_change, mean_prob_change, share_top_changed, n_prompts
ORDER BY abs(mean_logit_change) DESC, n_prompts DESC, supernode, role
LIMIT $limit
