// Where each of the features $keys sits: its occurrences counted per graph and token position.
//
// _feature-positions for a few features (the members of supernode proposals, whose names it feeds):
// read from their own OF_FEATURE lists, not from a scan of the nodes.
//
// Parameters:
//   $keys: list              global feature keys
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/1/12928", "gid": "3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6", "pos": 3, "n": 1}
MATCH (f:Feature)<-[o:OF_FEATURE]-(n:Node)
WHERE f.key IN $keys
RETURN f.key AS fkey, o.gid AS gid, n.pos AS pos, count(*) AS n
