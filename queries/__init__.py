"""Named, parameterised, documented Cypher queries across the graph corpus."""
