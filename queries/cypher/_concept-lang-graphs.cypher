// How many graphs of one concept each language has (the denominators of consistency).
//
// Parameters:
//   $concept: str            the concept tag value
// Example row:
//   {"lang": "en", "n_graphs": 16}
MATCH (c:Tag)<-[:TAGGED]-(g:Graph)-[:TAGGED]->(l:Tag)
WHERE c.key = 'concept' AND c.value = $concept AND l.key = 'lang'
RETURN l.value AS lang, count(DISTINCT g.id) AS n_graphs
ORDER BY lang
