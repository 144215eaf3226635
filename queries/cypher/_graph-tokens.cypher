// Every graph's prompt tokens and layer count (to read the token at a node's position).
//
// Parameters:
// Example row:
//   {"gid": "3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6", "tokens": ["<bos>", "The", " saying"], "n_layers": 26}
MATCH (g:Graph)
RETURN g.id AS gid, g.prompt_tokens AS tokens, g.n_layers AS n_layers
