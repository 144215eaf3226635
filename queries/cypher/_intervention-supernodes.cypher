// Link an intervention to the stored supernodes it acted on, with their role (suppress, inject, ablate, ...).
//
// Parameters:
//   $id: str                 the intervention's id
//   $rows: list              {supernode, role} per supernode; supernodes not in the store are skipped
// Example row:
//   {"n": 2}
UNWIND $rows AS r
MATCH (i:Intervention {id: $id})
MATCH (s:Supernode {id: r.supernode})
MERGE (i)-[x:ON_SUPERNODE]->(s)
SET x.role = r.role
RETURN count(*) AS n
