// Set the label a feature shows (Feature.label, the one every query returns).
//
// Parameters:
//   $rows: list              {fkey, text} per feature
// Example row:
//   {}
UNWIND $rows AS r
MATCH (f:Feature {key: r.fkey})
SET f.label = r.text
