// Lint Cypher statements with Neo4j's own parser and semantic analysis, offline.
// stdin: JSON [{"name": ..., "cypher": ...}]; stdout: JSON [{"name", "diagnostics": [{message, severity, line, column}]}]
// Used by tests/test_cypher_lint.py; install with `npm ci --prefix tools/cypher-lint`.
import { lintCypherQuery } from '@neo4j-cypher/language-support';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const statements = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const out = statements.map(({ name, cypher }) => ({
  name,
  diagnostics: lintCypherQuery(cypher, {}).diagnostics.map((d) => ({
    message: d.message,
    severity: d.severity, // 1 error, 2 warning
    line: d.range.start.line + 1,
    column: d.range.start.character + 1,
  })),
}));
process.stdout.write(JSON.stringify(out));
