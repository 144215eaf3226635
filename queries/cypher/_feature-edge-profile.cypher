// Edges touching a feature, aggregated over graphs by what each end is globally.
//
// Ends are identified by (kind, layer, fkey, token): features by key, embeddings and logits by
// token, error nodes by layer. Only edges with |weight| >= $min_weight. The signed input/output
// profiles of supernode proposals are built from these rows.
//
// Parameters:
//   $min_weight: float       only edges with at least this |weight|
// Example row:
//   {"a_kind": "embedding", "a_layer": -1, "a_fkey": null, "a_token": " ice", "b_kind": "feature", "b_layer": 0, "b_fkey": "mntss/clt-gemma-2-2b-2.5M/0/18753", "b_token": null, "weight": 12.5, "n_edges": 3}
MATCH (a:Node)-[e:EFFECT]->(b:Node)
WHERE abs(e.weight) >= $min_weight AND (a.fkey IS NOT NULL OR b.fkey IS NOT NULL)
RETURN a.kind AS a_kind, a.layer AS a_layer, a.fkey AS a_fkey, a.token AS a_token,
       b.kind AS b_kind, b.layer AS b_layer, b.fkey AS b_fkey, b.token AS b_token,
       sum(e.weight) AS weight, count(*) AS n_edges
