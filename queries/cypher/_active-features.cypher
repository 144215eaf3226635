// The active feature set of every tagged graph, per layer: the input of the multilingual IoU.
//
// Graphs need `lang=<code>` and `item=<id>` tags; $concept ("" for all) restricts to `concept=<name>`.
//
// Parameters:
//   $concept: str = ""       the concept tag value; "" for every concept
// Example row:
//   {"gid": "3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6", "lang": "fr", "item": "hot-cold", "concept": "antonym", "n_layers": 4, "layer": 2, "features": ["organism/llama-tiny/plt/2/17"], "model": "organisms/planted-seed0"}
MATCH (i:Tag)<-[:TAGGED]-(g:Graph)-[:TAGGED]->(l:Tag)
WHERE l.key = 'lang' AND i.key = 'item'
OPTIONAL MATCH (g)-[:TAGGED]->(c:Tag)
WHERE c.key = 'concept'
WITH g, l, i, c
WHERE $concept = '' OR c.value = $concept
MATCH (g)-[:HAS_NODE]->(n:Node)
WHERE n.fkey IS NOT NULL
RETURN g.id AS gid, l.value AS lang, i.value AS item, c.value AS concept, g.n_layers AS n_layers, n.layer AS layer,
       collect(DISTINCT n.fkey) AS features, g.model AS model
