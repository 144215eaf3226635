// The graphs in scope (all, or those tagged $within), each marked with whether it carries $tag.
//
// Parameters:
//   $tag: str                a tag "key=value"
//   $within: str = ""        only graphs with this tag ("" for all)
// Example row:
//   {"gid": "3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6", "tagged": true}
MATCH (g:Graph)
WHERE $within = '' OR EXISTS { MATCH (g)-[:TAGGED]->(w:Tag) WHERE w.id = $within }
RETURN g.id AS gid, EXISTS { MATCH (g)-[:TAGGED]->(t:Tag) WHERE t.id = $tag } AS tagged
