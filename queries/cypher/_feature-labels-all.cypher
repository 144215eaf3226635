// Every stored feature with the label it shows and each of its stored labels (one row per label; nulls when it has none).
//
// Parameters:
// Example row:
//   {"fkey": "mntss/clt-gemma-2-2b-2.5M/1/12928", "label": "\" to\" → say \" the\"", "source": "auto", "text": "\" to\" → say \" the\"", "created": "2026-11-22T10:00:00+00:00"}
MATCH (f:Feature)
OPTIONAL MATCH (f)-[:HAS_LABEL]->(l:FeatureLabel)
RETURN f.key AS fkey, f.label AS label, l.source AS source, l.text AS text, l.created AS created
