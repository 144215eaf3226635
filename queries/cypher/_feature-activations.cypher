// The activations of one feature's occurrences (those that have one), smallest first: the distribution
// feature-profile shows. Only the numbers travel: 120,000 rows for a feature in all of 10,000 graphs.
//
// Parameters:
//   $fkey: str               the global feature key
// Example row:
//   {"activation": 7.5}
MATCH (f:Feature {key: $fkey})<-[:OF_FEATURE]-(n:Node)
WHERE n.activation IS NOT NULL
RETURN n.activation AS activation
ORDER BY activation
