// Stored supernodes (proposed by `circuit-atlas supernodes propose` or imported from Neuronpedia), best first.
//
// Parameters:
//   $source: str = ""        "proposed", "neuronpedia", or "" for both
//   $limit: int = 50         rows returned
// Example row:
//   {"id": "auto/5f2c9a1b3d4e", "name": "layers 0-1 · \"The\"/\" to\" → say \" cold\"", "source": "proposed", "gid": "", "coherence": 0.62, "n_graphs": 41, "influence": 18.3, "n_members": 4, "members": ["mntss/clt-gemma-2-2b-2.5M/0/18753"]}
MATCH (s:Supernode)
WHERE $source = '' OR s.source = $source
OPTIONAL MATCH (s)-[:HAS_MEMBER]->(f:Feature)
WITH s, collect(f.key) AS members
RETURN s.id AS id, s.name AS name, s.source AS source, s.gid AS gid, s.coherence AS coherence,
       s.n_graphs AS n_graphs, s.influence AS influence, s.n_members AS n_members, members
ORDER BY coalesce(s.coherence, 0.0) * s.n_graphs DESC, id
LIMIT $limit
