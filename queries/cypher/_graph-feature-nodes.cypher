// The feature nodes of one stored graph, with the prompt they were traced on.
//
// Parameters:
//   $gid: str                the graph's id
// Example row:
//   {"prompt": "the capital of the country containing binton is", "node_id": "2_9_8", "layer": 2, "pos": 8, "feature": 9, "activation": 3.1, "transcoder_set": "organisms/planted-plt-seed0"}
MATCH (g:Graph {id: $gid})-[:HAS_NODE]->(n:Node)
WHERE n.kind = 'feature'
RETURN g.prompt AS prompt, n.node_id AS node_id, n.layer AS layer, n.pos AS pos, n.feature AS feature,
       n.activation AS activation, g.transcoder_set AS transcoder_set
ORDER BY layer, pos, feature
