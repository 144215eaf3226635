// Features whose key ends with $suffix: the full keys a short one ("20/15589") may stand for.
//
// Parameters:
//   $suffix: str             the end of a key, with its leading "/", e.g. "/20/15589"
// Example row:
//   {"fkey": "mntss/gemma-scope-transcoders/20/15589"}
MATCH (f:Feature)
WHERE f.key ENDS WITH $suffix
RETURN f.key AS fkey
ORDER BY fkey
LIMIT 4
