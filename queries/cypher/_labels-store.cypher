// Store new feature labels, one per (feature, source). store_labels first deletes the labels a source
// replaces (_labels-delete-source), or leaves out the ones it already has, in the same transaction.
//
// Parameters:
//   $rows: list              {id, fkey, source, text, inputs, logits, promotes, created} per label
// Example row:
//   {}
UNWIND $rows AS r
CREATE (l:FeatureLabel {id: r.id, fkey: r.fkey, source: r.source, text: r.text, inputs: r.inputs,
                        logits: r.logits, promotes: r.promotes, created: r.created})
