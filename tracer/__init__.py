"""Attribution graphs for Hugging Face `transformers` models with per-layer or cross-layer transcoders."""
