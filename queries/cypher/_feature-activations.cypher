// The activations of one feature's occurrences (those that have one), smallest first: the distribution
// feature-profile shows. Only the numbers travel: 120,000 rows for a feature in all of 10,000 graphs,
// read from the links (OF_FEATURE.activation, a copy of the occurrence's), not from the scattered nodes.
//
// Parameters:
//   $fkey: str               the global feature key
// Example row:
//   {"activation": 7.5}
MATCH (f:Feature {key: $fkey})<-[o:OF_FEATURE]-(:Node)
WHERE o.activation IS NOT NULL
RETURN o.activation AS activation
ORDER BY activation
