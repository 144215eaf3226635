// Graphs whose prompt contains a piece of text (case-insensitive; "" matches all), with their tags.
//
// (`x CONTAINS ''` is false in the embedded engine and true in Neo4j, hence the explicit $text = ''.)
//
// Parameters:
//   $text: str               a piece of the prompt
//   $limit: int              rows returned
// Example row:
//   {"gid": "3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6", "slug": "cold-clt-hp", "prompt": "<bos>The saying goes: Fire is to heat as ice is to", "model": "gemma-2-2b", "n_edges": 7660, "tags": ["set=analogies"]}
MATCH (g:Graph)
WHERE $text = '' OR toLower(g.prompt) CONTAINS toLower($text)
OPTIONAL MATCH (g)-[:TAGGED]->(t:Tag)
WITH g, collect(t.id) AS tags
RETURN g.id AS gid, g.slug AS slug, g.prompt AS prompt, g.model AS model, g.n_edges AS n_edges, tags
ORDER BY slug, gid
LIMIT $limit
