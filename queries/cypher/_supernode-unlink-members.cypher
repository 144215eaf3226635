// Drop a supernode's member links before it is stored again with new members (its other links stay).
//
// Parameters:
//   $id: str                 the supernode's id
// Example row:
//   {"n": 4}
MATCH (s:Supernode {id: $id})-[r:HAS_MEMBER]->(:Feature)
DELETE r
RETURN count(*) AS n
