// Neighbour identities by their numbers (NeighbourEnd.id): what Neighbour rows' end_id name. A feature by
// its key, an embedding or logit by its token, an error node by its layer. One statement for the few
// identities a neighbour query shows: the embedded engine finds them by one scan of the id column (6 ms
// at 663k identities; it uses the INT64 key's index only for a literal, not a parameter), Neo4j by index.
//
// Parameters:
//   $ids: list               NeighbourEnd.id values
// Example row:
//   {"id": 4211, "kind": "feature", "layer": 0, "fkey": "mntss/clt-gemma-2-2b-2.5M/0/18753", "token": null}
MATCH (e:NeighbourEnd)
WHERE e.id IN $ids
RETURN e.id AS id, e.kind AS kind, e.layer AS layer, e.fkey AS fkey, e.token AS token
