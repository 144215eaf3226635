// Store feature labels, one per (feature, source): a new label from the same source replaces the old one.
//
// Parameters:
//   $rows: list              {id, fkey, source, text, inputs, logits, promotes, created} per label
// Example row:
//   {}
UNWIND $rows AS r
MERGE (l:FeatureLabel {id: r.id})
SET l.fkey = r.fkey, l.source = r.source, l.text = r.text, l.inputs = r.inputs, l.logits = r.logits,
    l.promotes = r.promotes, l.created = r.created
