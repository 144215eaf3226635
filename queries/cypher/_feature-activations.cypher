// The activations of one feature's occurrences (those that have one), as one list, smallest first (the
// library sorts a collected list): the distribution feature-profile shows. Only the numbers travel, in one
// row: 120,000 of them for a feature in all of 10,000 graphs, read from the links (OF_FEATURE.activation,
// a copy of the occurrence's), not from the scattered nodes; a row each cost twice the time to hand over.
//
// Parameters:
//   $fkey: str               the global feature key
// Example row:
//   {"activations": [0.5, 4.1, 7.5, 16.0]}
MATCH (f:Feature {key: $fkey})<-[o:OF_FEATURE]-(:Node)
WHERE o.activation IS NOT NULL
RETURN collect(o.activation) AS activations
