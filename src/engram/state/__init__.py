"""Model state that persists: KV caches of local Hugging Face models per session, Ollama
contexts, and routing between an edge and a laptop model (docs/state.md)."""
