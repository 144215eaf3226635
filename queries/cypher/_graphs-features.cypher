// Which features occur in which of the graphs $gids, with their best importance there.
//
// Parameters:
//   $gids: list              graph ids
// Example row:
//   {"fkey": "organisms/planted-plt-seed0/2/9", "gid": "3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6", "importance": 0.42}
MATCH (n:Node)
WHERE n.gid IN $gids AND n.fkey IS NOT NULL
RETURN n.fkey AS fkey, n.gid AS gid, max(1.0 - coalesce(n.influence, 1.0)) AS importance
