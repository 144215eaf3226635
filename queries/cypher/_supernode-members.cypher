// A stored supernode's member features (no row: no such supernode, or no members).
//
// Parameters:
//   $id: str                 the supernode's id
// Example row:
//   {"name": "country zot", "key": "organisms/planted-plt-seed0/2/9", "transcoder_set": "organisms/planted-plt-seed0", "layer": 2, "feature": 9}
MATCH (s:Supernode {id: $id})-[:HAS_MEMBER]->(f:Feature)
RETURN s.name AS name, f.key AS key, f.transcoder_set AS transcoder_set, f.layer AS layer, f.feature AS feature
ORDER BY layer, feature
