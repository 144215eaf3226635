// Per feature and language: the graphs of one concept it occurs in, its mean activation and best influence.
//
// Uses the tagging convention of docs/queries.md: graphs carry `concept=<name>` and `lang=<code>`.
// The rows shared-multilingual-features ranks.
//
// Parameters:
//   $concept: str            the concept tag value, e.g. "antonym"
// Example row:
//   {"fkey": "organisms/planted-plt-seed0/1/17", "lang": "en", "activation": 2.1, "influence": 0.12, "n_graphs": 4}
MATCH (c:Tag)<-[:TAGGED]-(g:Graph)-[:TAGGED]->(l:Tag)
WHERE c.key = 'concept' AND c.value = $concept AND l.key = 'lang'
MATCH (g)-[:HAS_NODE]->(n:Node)
WHERE n.fkey IS NOT NULL
RETURN n.fkey AS fkey, l.value AS lang, avg(n.activation) AS activation, min(n.influence) AS influence,
       count(DISTINCT g.id) AS n_graphs
