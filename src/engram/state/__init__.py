"""Model state that persists: KV caches of local Hugging Face models per session, Ollama
contexts, and routing between an edge and a laptop model (docs/state.md).

- `fingerprint`, `manifest`, `codec`: what a saved state is (pure, no torch at import);
- `store`: saved states on disk (content-addressed chunks, checksums, eviction, crash-safe);
- `cache`, `engine`, `provider`: a local model that restores, decodes and saves (`hf:PATH`);
- `merge`: two states into one by re-rotating keys; `travel`: export and import (also
  beside a sync bundle); `peer`: the same over HTTP (`engram sync peer --states`);
- `attention`: the shares of attention an answer gave its memories, kept with the turn;
- `route`, `route_proxy`: the edge/laptop router for the chat and the proxy;
- `tiny`: a small random-weight Llama built from a config, for tests and benchmarks.

`import engram.state` imports none of torch or transformers.
"""
