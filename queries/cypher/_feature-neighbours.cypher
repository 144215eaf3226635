// The neighbours of each of the features $keys over every stored graph, from the aggregates kept at ingest.
//
// One row per (feature, direction, neighbour): the Neighbour rows of schema.NEIGHBOUR, read for many
// features at once without touching an edge. dir 0: edges into the feature's occurrences, 1: edges out
// of them (an edge between two features is in both). A neighbour is the other end's identity: a
// feature by key, an embedding or logit by token, an error node by layer (its NeighbourEnd: kind,
// layer, end_fkey, token). `weight` is the sum of the weights of those edges in all graphs. Only rows
// whose edges average at least $min_weight in |weight| (Neighbour keeps sums: abs_weight >= $min_weight
// * n_edges; 0 keeps every row), and with $kind only neighbours of that kind. The one statement that
// reads Neighbour rows for a list of features (supernode profiles and names): a change of the
// Neighbour layout is made here (both link types: HAS_UPSTREAM, HAS_DOWNSTREAM). (`f.key IN $keys`,
// not UNWIND: the embedded engine then reads only
// these features' rows; with UNWIND it scanned every Neighbour row, 19 s at 10,000 graphs.)
//
// Parameters:
//   $keys: list              global feature keys
//   $min_weight: float = 0.0 only rows whose mean |weight| per edge is at least this
//   $kind: str = ""          only neighbours of this kind ("logit", "feature", ...); "" for all
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/18/4717", "dir": 1, "kind": "logit", "layer": 26, "end_fkey": null, "token": " cold", "weight": 12.5}
MATCH (f:Feature)-[:HAS_UPSTREAM|HAS_DOWNSTREAM]->(a:Neighbour)
WHERE f.key IN $keys AND a.abs_weight >= $min_weight * a.n_edges
MATCH (e:NeighbourEnd {id: a.end_id})
WHERE $kind = '' OR e.kind = $kind
RETURN f.key AS fkey, a.dir AS dir, e.kind AS kind, e.layer AS layer, e.fkey AS end_fkey, e.token AS token,
       a.weight AS weight
