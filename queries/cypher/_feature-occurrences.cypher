// Every occurrence of one feature: its graph, position, activation and influence.
//
// Parameters:
//   $fkey: str               the global feature key
// Example row:
//   {"gid": "3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6", "pos": 12, "activation": 7.5, "influence": 0.31, "label": ""}
MATCH (f:Feature {key: $fkey})<-[:OF_FEATURE]-(n:Node)
RETURN n.gid AS gid, n.pos AS pos, n.activation AS activation, n.influence AS influence, n.label AS label
ORDER BY gid, pos
