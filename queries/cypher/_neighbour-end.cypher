// One neighbour identity by its number (NeighbourEnd.id, the key: a lookup by index): what a Neighbour
// row's end_id names. A feature by its key, an embedding or logit by its token, an error node by its layer.
//
// Parameters:
//   $id: int                 NeighbourEnd.id
// Example row:
//   {"id": 4211, "kind": "feature", "layer": 0, "fkey": "mntss/clt-gemma-2-2b-2.5M/0/18753", "token": null}
MATCH (e:NeighbourEnd {id: $id})
RETURN e.id AS id, e.kind AS kind, e.layer AS layer, e.fkey AS fkey, e.token AS token
