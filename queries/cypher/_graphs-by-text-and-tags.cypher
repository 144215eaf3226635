// Graphs whose prompt contains a piece of text and that carry every tag of a non-empty list.
//
// (An empty list parameter cannot be typed by the embedded engine, so search-graphs runs
// _graphs-by-text when no tag is asked for. Counting hits over an OPTIONAL MATCH after a text filter
// returned no rows in the embedded engine, hence the tag match first.) $tags must not repeat a tag.
//
// Parameters:
//   $text: str               a piece of the prompt ("" matches all)
//   $tags: list              tags "key=value" the graph must all carry; not empty
//   $limit: int              rows returned
// Example row:
//   {"gid": "3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6", "slug": "cold-clt-hp", "prompt": "<bos>The saying goes: Fire is to heat as ice is to", "model": "gemma-2-2b", "n_edges": 7660, "tags": ["set=analogies"]}
MATCH (g:Graph)-[:TAGGED]->(t:Tag)
WHERE t.id IN $tags
WITH g, count(*) AS hits
WHERE hits = size($tags) AND ($text = '' OR toLower(g.prompt) CONTAINS toLower($text))
OPTIONAL MATCH (g)-[:TAGGED]->(t2:Tag)
WITH g, collect(t2.id) AS tags
RETURN g.id AS gid, g.slug AS slug, g.prompt AS prompt, g.model AS model, g.n_edges AS n_edges, tags
ORDER BY slug, gid
LIMIT $limit
