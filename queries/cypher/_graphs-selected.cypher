// The graphs a selector names: a graph id, a slug, or a tag "key=value".
//
// Parameters:
//   $selector: str           graph id, slug, or tag
// Example row:
//   {"gid": "3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6"}
MATCH (g:Graph)
WHERE g.id = $selector OR g.slug = $selector
   OR EXISTS { MATCH (g)-[:TAGGED]->(t:Tag) WHERE t.id = $selector }
RETURN g.id AS gid
ORDER BY gid
