// Link an intervention to the features it touched (features not stored yet are created, as audits do).
//
// Parameters:
//   $id: str                 the intervention's id
//   $rows: list              {key, transcoder_set, layer, feature, op, value} per feature
// Example row:
//   {"n": 3}
UNWIND $rows AS r
MATCH (i:Intervention {id: $id})
MERGE (f:Feature {key: r.key})
ON CREATE SET f.transcoder_set = r.transcoder_set, f.layer = r.layer, f.feature = r.feature, f.label = ''
MERGE (i)-[x:INTERVENED_ON]->(f)
SET x.op = r.op, x.value = r.value
RETURN count(*) AS n
