// Link an intervention to the stored graphs of its prompt (same prompt, model and transcoder set).
//
// Parameters:
//   $id: str                 the intervention's id
// Example row:
//   {"n": 1}
MATCH (i:Intervention {id: $id})
MATCH (g:Graph)
WHERE g.prompt = i.prompt AND g.model = i.model AND g.transcoder_set = i.transcoder_set
MERGE (i)-[:ON_GRAPH]->(g)
RETURN count(*) AS n
