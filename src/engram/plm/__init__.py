"""A personal language model that fits the edge (docs/plm.md): a student learns from a stronger
teacher's answers to this user (distillation), the parts of the network the user's domains use
are found from activations (tracking), the rest is cut away (structured pruning), the quality is
recovered by distillation from the unpruned model, and the weights are stored in 8 bits (GGUF
Q8_0 for llama.cpp and Ollama). The model parts need the `plm` extra; nothing here imports torch
at import time."""
