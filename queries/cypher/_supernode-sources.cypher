// The sources of the stored supernodes, with how many each has (to explain an empty answer).
//
// Parameters:
// Example row:
//   {"source": "proposed", "n": 42}
MATCH (s:Supernode)
RETURN s.source AS source, count(*) AS n
ORDER BY source
