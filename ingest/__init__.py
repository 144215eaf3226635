"""Load graph files (circuit-atlas, circuit-tracer, Neuronpedia JSON and .pt) into the graph store."""
