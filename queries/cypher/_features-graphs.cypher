// The graphs each of the features $keys occurs in, with its importance there.
//
// Importance = 1 - best cumulative influence in that graph (see hubs-by-influence). Read from each
// feature's own OF_FEATURE list, which carries its occurrences' graph and influence.
//
// Parameters:
//   $keys: list              global feature keys
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/1/12928", "gid": "3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6", "importance": 0.61}
MATCH (f:Feature)<-[o:OF_FEATURE]-(:Node)
WHERE f.key IN $keys
RETURN f.key AS fkey, o.gid AS gid, max(1.0 - coalesce(o.influence, 1.0)) AS importance
