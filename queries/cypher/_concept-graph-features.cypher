// The feature table of every graph of one concept, once per language tag it carries.
//
// `features` is the graph's feature table kept at ingest (Graph.features; decode with
// circuit_atlas.store.aggregates.decode_blob): the input of shared-multilingual-features.
//
// Parameters:
//   $concept: str            the concept tag value
// Example row:
//   {"gid": "3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6", "lang": "en", "transcoder_set": "organism/llama-tiny/plt", "features": "eJxjYGBgZGBgAAA..."}
MATCH (c:Tag)<-[:TAGGED]-(g:Graph)-[:TAGGED]->(l:Tag)
WHERE c.key = 'concept' AND c.value = $concept AND l.key = 'lang'
RETURN g.id AS gid, l.value AS lang, g.transcoder_set AS transcoder_set, g.features AS features
