// Every tag with how many graphs carry it (to explain an empty answer).
//
// Parameters:
// Example row:
//   {"id": "lang=fr", "key": "lang", "value": "fr", "n_graphs": 5}
MATCH (g:Graph)-[:TAGGED]->(t:Tag)
RETURN t.id AS id, t.key AS key, t.value AS value, count(*) AS n_graphs
ORDER BY key, value
