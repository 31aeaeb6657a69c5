"""A small Llama-architecture causal LM built offline, for tests, benchmarks and demos that need
a real model where no weights can be downloaded: a byte-level BPE tokenizer trained on a
generated corpus, a `LlamaConfig` of any size, pre-trained briefly on that corpus so that it
is a language model at all, saved as a Hugging Face folder (safetensors).

    from engram.train.tiny import build
    folder = build(Path("tiny-llama"), layers=4, hidden=256, pretrain_steps=300)

The corpus speaks of people, places and things in the prompt format `base.prompt` uses for a
model without a chat template ("Question: …\\nAnswer: …"), so the model knows the format and
an adapter only has to learn facts. `corpus(n, seed)` with a seed the build did not use gives
held-out general text of the same kind (the perplexity probe)."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

NAMES = ("Tom Mia Leo Zoe Sam Ivy Max Eva Ben Ana Kai Una Raj Lin Oto Pia Noa Eli Ada Gus "
         "Ida Jon Kim Lou Ned Ola Per Rut Sid Tea").split()
# Names that are only ever values (a brother, a boss), never the subject of a statement: a
# benchmark's persona takes one, so held-out general text says nothing about it.
KIN = ("Marta Hugo Nina Omar Rosa Ivan Lena Otto Vera Axel Dora Finn Gina Hans Iris Jack Karl "
       "Lara Mona Nils").split()
PLACES = ("Paris Oslo Rome Lima Cairo Quito Dublin Vienna Prague Accra Seoul Perth Lagos "
          "Bergen Porto Riga Tunis Delhi Hanoi Bogota").split()
THINGS = ("red blue green amber violet silver tea coffee chess tennis jazz opera cocoa "
          "golf piano cello rugby salsa poetry sushi").split()
JOBS = "baker pilot nurse tailor farmer painter plumber teacher lawyer chemist".split()
ALLERGENS = "peanuts pollen shellfish gluten dust eggs".split()
PETS = "Rex Luna Bruno Mochi Pixel Coco Nemo Pippin".split()
MONTHS = "January March April June August October November December".split()
NUMBERS = "three seven nine eleven twelve twenty".split()
# attribute → its values: "Ana's favourite colour is red.", "Ana's brother is Hugo."
ATTRIBUTES: dict[str, list[str]] = {
    **{f"favourite {a}": THINGS for a in (
        "colour drink game sport music hobby dish instrument snack pastime song tune".split())},
    **{f"favourite {a}": PLACES for a in ("city", "town", "port", "capital")},
    **{a: KIN for a in ("brother", "sister", "mother", "father", "son", "daughter", "husband",
                        "wife", "cousin", "uncle", "aunt", "best friend", "boss", "dentist",
                        "doctor", "neighbour", "teacher", "coach")},
    **{a: PETS for a in ("cat", "dog", "horse", "parrot")},
    **{a: MONTHS for a in ("birthday month", "wedding month", "holiday month")},
    **{a: NUMBERS for a in ("lucky number", "house number", "locker number")},
    "home town": PLACES, "bank": [f"{p} Bank" for p in PLACES],
}


# The shapes of statement beside "X's <attribute> is <value>": (statement, question, values)
SHAPES = (("{who} lives in {v}.", "Where does {who} live?", PLACES),
          ("{who} likes {v}.", "What does {who} like?", THINGS),
          ("{who} works as a {v}.", "What does {who} do for a living?", JOBS),
          ("{who} works at {v} Bank.", "Where does {who} work?", PLACES),
          ("{who} is allergic to {v}.", "What is {who} allergic to?", ALLERGENS))


def world(seed: int = 0) -> dict[str, list[tuple[str, str]]]:
    """What the corpus holds true: for each name, one value per shape and attribute, fixed by
    `seed`, so a model pre-trained on it learns to look a fact up by whom it is about (as a
    real language model does) rather than to guess a value at random."""
    rng = random.Random(f"world-{seed}")
    facts: dict[str, list[tuple[str, str]]] = {}
    for who in NAMES:
        known = [(fact.format(who=who, v=rng.choice(values)), question.format(who=who))
                 for fact, question, values in SHAPES]
        known += [(f"{who}'s {a} is {rng.choice(values)}.", f"What is {who}'s {a}?")
                  for a, values in ATTRIBUTES.items()]
        facts[who] = known
    return facts


def corpus(n: int, seed: int = 0, qa_share: float = 0.5, world_seed: int = 0) -> list[str]:
    """`n` lines drawn from the world's facts, `qa_share` of them as question and answer.
    The grammar is finite (30 names x 51 facts x 2 forms), so a corpus of another seed is
    mostly the same sentences: general text of the model's world, not new content."""
    rng = random.Random(seed)
    facts = [f for known in world(world_seed).values() for f in known]
    lines = []
    for _ in range(n):
        fact, question = rng.choice(facts)
        asked = rng.random() < qa_share
        lines.append(f"Question: {question}\nAnswer: {fact}" if asked else fact)
    return lines


def build(folder: Path, texts: Sequence[str] = (), *, layers: int = 2, hidden: int = 96,
          vocab: int = 1200, pretrain_steps: int = 0, lr: float = 6e-3, seed: int = 0) -> Path:
    """Save at `folder` a model whose tokenizer was trained on the generated corpus and
    `texts`, after `pretrain_steps` batches of 16 corpus lines (mostly questions and answers:
    a model this small learns to look back at the name a question asks about, which every
    fact needs, only from many of them; 2 layers x 96 learn it in about 300 steps at this
    `lr`, 4 x 256 in fewer). Returns `folder`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(seed)
    raw = Tokenizer(models.BPE(unk_token=None))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.post_processor = processors.TemplateProcessing(  # every text opens with BOS, as
        single="<s> $A", special_tokens=[("<s>", 1)])  # Llama's tokenizer does
    raw.train_from_iterator([*corpus(2000, seed), *texts], trainers.BpeTrainer(
        vocab_size=vocab, special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast: Any = PreTrainedTokenizerFast  # untyped
    tokenizer = fast(tokenizer_object=raw, bos_token="<s>",
                                        eos_token="</s>", pad_token="<pad>")
    config = LlamaConfig(vocab_size=raw.get_vocab_size(), hidden_size=hidden,
                         intermediate_size=hidden * 2, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, tie_word_embeddings=True,
                         pad_token_id=0, bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(config)
    if pretrain_steps:
        pretrain(model, tokenizer, corpus(20000, seed + 1, qa_share=0.9), pretrain_steps, seed,
                 lr)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def pretrain(model: Any, tokenizer: Any, lines: Sequence[str], steps: int, seed: int = 0,
             lr: float = 6e-3) -> float:
    """Plain next-token training on `lines` (batches of 16, learning rate decaying linearly
    from `lr`); the seconds it took."""
    import torch

    started = time.perf_counter()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 - s / max(1, steps))
    rng = random.Random(seed)
    model.train()
    for _ in range(steps):
        texts = [f"{line}{tokenizer.eos_token}" for line in rng.sample(list(lines), 16)]
        batch = tokenizer(texts, return_tensors="pt", padding=True)
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
    model.eval()
    return time.perf_counter() - started
