// The feature table of every graph tagged lang and item (and concept=$concept): the input of the multilingual IoU.
//
// `features` is the graph's feature table kept at ingest (Graph.features: every feature of the graph
// with its layer, occurrences, activation sum and best influence; decode with
// circuit_atlas.store.aggregates.decode_blob). Graphs need `lang=<code>` and `item=<id>` tags;
// $concept ("" for all) restricts to `concept=<name>`.
//
// Parameters:
//   $concept: str = ""       the concept tag value; "" for every concept
// Example row:
//   {"gid": "3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6", "lang": "fr", "item": "hot-cold", "concept": "antonym", "n_layers": 4, "transcoder_set": "organism/llama-tiny/plt", "features": "eJxjYGBgZGBgAAA...", "model": "organisms/planted-seed0"}
MATCH (i:Tag)<-[:TAGGED]-(g:Graph)-[:TAGGED]->(l:Tag)
WHERE l.key = 'lang' AND i.key = 'item'
OPTIONAL MATCH (g)-[:TAGGED]->(c:Tag)
WHERE c.key = 'concept'
WITH g, l, i, c
WHERE $concept = '' OR c.value = $concept
RETURN g.id AS gid, l.value AS lang, i.value AS item, c.value AS concept, g.n_layers AS n_layers,
       g.transcoder_set AS transcoder_set, g.features AS features, g.model AS model
