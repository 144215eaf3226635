// Store one supernode and link it to its member features (features not in the store are skipped).
//
// (UNWIND $members + MATCH by key + MERGE fails in the embedded engine with 'unordered_map::at'.)
//
// Parameters:
//   $id: str                 "auto/<hash of members>" or "np/<graph id>/<index>"
//   $name: str               a readable name
//   $source: str             "proposed" or "neuronpedia"
//   $gid: str                the graph a manual supernode belongs to; "" for proposals
//   $node_ids: str           space-separated member node ids of a manual supernode (may name non-feature nodes); "" for proposals
//   $coherence: float        mean pairwise role similarity of the members
//   $n_graphs: int           graphs in which at least one member occurs
//   $influence: float        summed importance (1 - cumulative influence) of members over graphs
//   $members: list           member feature keys; not empty
// Example row:
//   {"n_members": 4}
MERGE (s:Supernode {id: $id})
SET s.name = $name, s.source = $source, s.gid = $gid, s.node_ids = $node_ids, s.coherence = $coherence,
    s.n_graphs = $n_graphs, s.influence = $influence, s.n_members = size($members)
WITH s
MATCH (f:Feature)
WHERE f.key IN $members
MERGE (s)-[:HAS_MEMBER]->(f)
RETURN count(*) AS n_members
