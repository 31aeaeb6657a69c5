"""A small Llama model built here from a config, for tests, benchmarks and demos: a byte-level
BPE tokenizer trained on generated sentences and random weights, saved as a Hugging Face folder
(safetensors). Nothing is downloaded; the same seed gives the same model.

    python -m engram.state.tiny ./tiny-llama --layers 2 --hidden 64
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

NAMES = "Alice Bruno Chen Dara Emil Fatima Goran Hana Ivo Jun Kofi Lena".split()
PLACES = "Porto Oslo Lima Quito Accra Seoul Perth Riga Cork Baku".split()
THINGS = "tea chess jazz tennis opera cello kayaks maps ferns bread".split()


def sentences(n: int, seed: int = 0) -> list[str]:
    """`n` short generated statements about people, places and things."""
    rng = random.Random(seed)
    shapes = ("{who} lives in {where}.", "{who} likes {what}.", "{who} went to {where} for {what}.",
              "Does {who} like {what}? Yes, {who} does.", "{who} and {other} play {what}.")
    return [rng.choice(shapes).format(who=rng.choice(NAMES), other=rng.choice(NAMES),
                                      where=rng.choice(PLACES), what=rng.choice(THINGS))
            for _ in range(n)]


def build(path: str | Path, *, layers: int = 2, hidden: int = 64, heads: int = 4,
          kv_heads: int = 2, vocab: int = 320, max_positions: int = 2048,
          seed: int = 0) -> Path:
    """Write a random-weight Llama causal LM and its tokenizer to `path`; returns it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from transformers.utils import logging

    logging.disable_progress_bar()  # type: ignore[no-untyped-call]

    folder = Path(path)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    bpe.train_from_iterator(sentences(2000, seed), trainer)
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=bpe, bos_token="<s>", eos_token="</s>")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden,
                         intermediate_size=hidden * 2, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv_heads,
                         max_position_embeddings=max_positions, bos_token_id=0, eos_token_id=1,
                         tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # wider than the default init, so greedy decoding is not one token
        for parameter in model.parameters():
            if parameter.dim() == 2:
                parameter.normal_(0.0, 0.08)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("path")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--kv-heads", type=int, default=2)
    parser.add_argument("--max-positions", type=int, default=2048)
    args = parser.parse_args(argv)
    print(build(args.path, layers=args.layers, hidden=args.hidden, heads=args.heads,
                kv_heads=args.kv_heads, max_positions=args.max_positions))


if __name__ == "__main__":
    main()
