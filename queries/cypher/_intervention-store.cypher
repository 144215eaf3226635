// Store one intervention run (idempotent: the id is a content hash, a repeat overwrites it with the same values).
//
// Parameters:
//   $id: str                 content hash of model, transcoders, prompt, interventions and settings
//   $created: str            ISO-8601 UTC
//   $prompt: str             the prompt
//   $model: str              the model's name
//   $transcoder_set: str     the transcoder set's name
//   $kind: str               ablate | set | scale | add | steer (several ops)
//   $value: float            the op's argument when there is one op, else null
//   $description: str        what was done
//   $freeze_attention: bool  attention patterns frozen
//   $constrained_layers: str "0,1,2" or ""
//   $target_token: str       the measured token
//   $logit_before: float     its logit on the clean run
//   $logit_after: float      its logit with the interventions
//   $prob_before: float      its probability on the clean run
//   $prob_after: float       its probability with the interventions
//   $top_before: str         the clean run's top token
//   $top_after: str          the top token with the interventions
//   $effects: str            JSON of every target's change and the continuations
//   $job: str                the workers job, or ""
// Example row:
//   {"id": "9c1f0a2b3d4e5f60718293a4b5c6d7e8"}
MERGE (i:Intervention {id: $id})
SET i.created = $created, i.prompt = $prompt, i.model = $model, i.transcoder_set = $transcoder_set,
    i.kind = $kind, i.value = $value, i.description = $description, i.freeze_attention = $freeze_attention,
    i.constrained_layers = $constrained_layers, i.target_token = $target_token,
    i.logit_before = $logit_before, i.logit_after = $logit_after, i.logit_change = $logit_after - $logit_before,
    i.prob_before = $prob_before, i.prob_after = $prob_after, i.prob_change = $prob_after - $prob_before,
    i.top_before = $top_before, i.top_after = $top_after, i.top_changed = $top_before <> $top_after,
    i.effects = $effects, i.job = $job
RETURN i.id AS id
