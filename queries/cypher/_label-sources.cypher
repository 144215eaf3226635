// The sources of the stored feature labels, with how many labels each has (to explain an empty answer).
//
// Parameters:
// Example row:
//   {"source": "auto", "n": 5120}
MATCH (l:FeatureLabel)
RETURN l.source AS source, count(*) AS n
ORDER BY source
