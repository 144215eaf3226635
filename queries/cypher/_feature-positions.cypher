// Where each feature sits: its occurrences counted per graph and token position (input of automatic labels).
//
// Parameters:
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/1/12928", "gid": "3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6", "pos": 3, "n": 1}
MATCH (n:Node)
WHERE n.fkey IS NOT NULL
RETURN n.fkey AS fkey, n.gid AS gid, n.pos AS pos, count(*) AS n
