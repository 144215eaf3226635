// Features shared by the graphs of one concept in at least k languages, with per-language activation and influence.
//
// Uses the tagging convention of docs/queries.md: graphs carry `concept=<name>` and `lang=<code>`.
// `per_lang` holds, for each language, the graphs it occurs in, its mean activation and its best
// (smallest) cumulative influence.
//
// Parameters:
//   $concept: str            the concept tag value, e.g. "antonym"
//   $k: int = 2              minimum number of languages the feature occurs in
//   $limit: int = 100        rows returned
// Example row:
//   {"fkey": "organism/llama-tiny/plt/2/17", "layer": 2, "label": "", "n_langs": 3, "per_lang": [{"lang": "en", "n_graphs": 4, "activation": 2.1, "influence": 0.12}]}
MATCH (c:Tag)<-[:TAGGED]-(g:Graph)-[:TAGGED]->(l:Tag)
WHERE c.key = 'concept' AND c.value = $concept AND l.key = 'lang'
MATCH (g)-[:HAS_NODE]->(n:Node)
WHERE n.fkey IS NOT NULL
WITH n.fkey AS fkey, l.value AS lang, avg(n.activation) AS activation, min(n.influence) AS influence, count(DISTINCT g.id) AS n_graphs
WITH fkey, collect({lang: lang, n_graphs: n_graphs, activation: activation, influence: influence}) AS per_lang
WHERE size(per_lang) >= $k
MATCH (f:Feature {key: fkey})
RETURN fkey, f.layer AS layer, f.label AS label, size(per_lang) AS n_langs, per_lang
ORDER BY n_langs DESC, layer, fkey
LIMIT $limit
