// Delete the stored supernodes of one source (before storing a fresh proposal or import).
//
// Parameters:
//   $source: str             "proposed" or "neuronpedia"
// Example row:
//   {}
MATCH (s:Supernode)
WHERE s.source = $source
DETACH DELETE s
