"""Learning from memory: LoRA adapters crystallised from a user's confirmed memories
(docs/train.md). Candidates → curated dataset → PEFT LoRA → versioned registry → evaluation →
a local provider that answers with base + adapter. Torch, transformers and peft are imported
only by the modules that train or run a model (the `train` extra)."""
