// The graphs one feature appears in, strongest activation first.
//
// Occurrences are grouped by their graph id and only the graphs listed are looked up: a feature in every
// one of 10,000 graphs has ~100k occurrences, and joining each to its Graph doubled the time. Graph id,
// activation and influence are read from the links (OF_FEATURE, copies of the occurrence's), in sequence,
// not from the occurrences scattered across the Node table.
//
// Parameters:
//   $fkey: str               the global feature key, "<transcoder set>/<layer>/<feature>"
//   $limit: int = 1000       rows returned
// Example row:
//   {"gid": "3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6", "slug": "cold-clt-hp", "prompt": "<bos>The saying goes: Fire is to heat as ice is to", "n_occurrences": 2, "max_activation": 7.5, "best_influence": 0.31}
MATCH (f:Feature {key: $fkey})<-[o:OF_FEATURE]-(:Node)
WITH o.gid AS gid, count(*) AS n_occurrences, max(o.activation) AS max_activation, min(o.influence) AS best_influence
ORDER BY max_activation DESC, gid
LIMIT $limit
MATCH (g:Graph {id: gid})
RETURN g.id AS gid, g.slug AS slug, g.prompt AS prompt, n_occurrences, max_activation, best_influence
ORDER BY max_activation DESC, gid
