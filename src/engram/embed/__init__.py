"""Embeddings: embedders, the NumPy MiniLM, int8 vectors and their indexes."""
