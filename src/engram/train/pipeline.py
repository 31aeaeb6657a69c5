"""One run from memories to a registered adapter, and the continuous-learning loop around it.

`run`: accepted candidates → checked dataset → LoRA (resumable) → evaluation → registry.
`due` / `update`: accepted memories and interactions not yet learnt queue up; past
`train.after_accepted` of them, or `train.every_hours` after the last adapter, or when an
adapter carries a forgotten memory, an update continues from the last adapter and is
registered only if it is not worse than the active one (quality-gated promotion). An adapter
that learnt a memory since forgotten is `tainted`: the next update starts afresh without it."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from engram import validate
from engram.errors import InvalidInput
from engram.log.events import EventType
from engram.model import format_time, parse_time
from engram.train import Host, base, evaluate, settings
from engram.train.candidates import PRIVATE_TAG, Candidate, candidates, score, state_of
from engram.train.dataset import Dataset, build
from engram.train.lora import Hyper, Progress, Result, run_key, train, wrap
from engram.train.registry import Adapter, Registry

NEW = "default"  # PEFT's name for the adapter being trained
ACTIVE = "active"  # the user's active adapter, loaded beside it to compare


@dataclass
class Outcome:
    """What a run did: the adapter it registered (None when the gate refused or nothing was
    due), why, and the numbers behind it."""

    adapter: Adapter | None
    promoted: bool
    reason: str
    metrics: dict[str, Any] = field(default_factory=dict)
    result: Result | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.adapter.version if self.adapter else None,
                               "promoted": self.promoted, "reason": self.reason,
                               "metrics": self.metrics}
        if self.result is not None:
            out |= {"steps": self.result.steps, "resumed_from": self.result.resumed_from,
                    "seconds": self.result.seconds, "quantized": self.result.quantized}
        return out


def private_texts(host: Host, user: str) -> list[str]:
    """Texts that no example may repeat: the user's sensitive and private-tagged memories."""
    everything = host.store.select(validate.filters(user, statuses=None), limit=None)
    return [m.content for m in everything if m.sensitive or PRIVATE_TAG in m.tags]


def dataset_for(host: Host, user: str, hyper: Hyper, *, ids: Sequence[str] | None = None,
                domains: Sequence[str] = (),
                ask: Callable[[str], str] | None = None) -> Dataset:
    """The dataset of the user's accepted candidates (of `domains`, when given), or of the
    memories `ids` that still exist (to evaluate an adapter on what it learnt)."""
    if ids is None:
        chosen = candidates(host, user, state="accepted")
        if domains:
            wanted = {d.casefold() for d in domains}
            chosen = [c for c in chosen if wanted & {d.casefold() for d in c.memory.domains}]
    else:
        found = host.store.get_many(ids)
        chosen = []
        for i in ids:
            if i in found:
                value, reason = score(found[i], host.store.history(i))
                chosen.append(Candidate(found[i], value, reason, state_of(found[i])))
    return build(chosen, per_memory=hyper.per_memory, valid_fraction=hyper.valid_fraction,
                 seed=hyper.seed, private=private_texts(host, user), ask=ask)


def tainted(host: Host, adapter: Adapter) -> list[str]:
    """The memories this adapter learnt that have since been forgotten."""
    found = host.store.get_many(adapter.memory_ids)
    return [i for i in adapter.memory_ids if i not in found]


def run(host: Host, registry: Registry, user: str, base_path: str | Path, *,
        hyper: Hyper | None = None, texts: Sequence[str] | None = None,
        progress: Progress | None = None, start: str | None = None, gate: bool = False,
        domains: Sequence[str] = (), ask: Callable[[str], str] | None = None) -> Outcome:
    """Train an adapter for `user` on `base_path` (continuing the adapter `start`), evaluate
    it, and register it as the user's active one; with `gate`, only if it is not worse than
    the active adapter. A checkpoint of an interrupted run of the same data is resumed."""
    folder = base.check_folder(base_path)
    base_id = base.base_hash(folder)
    hyper = hyper or Hyper()
    parent = registry.get(start) if start else None
    if parent is not None:
        if parent.base_hash != base_id:
            raise InvalidInput("base", f"{parent.version} was trained on another base model "
                               f"({parent.base})", "give the same --base, or train afresh")
        hyper = replace(hyper, rank=parent.hyper.get("rank", hyper.rank),
                        alpha=parent.hyper.get("alpha", hyper.alpha))
    data = dataset_for(host, user, hyper, domains=domains, ask=ask)
    data.report.raise_if_failed()
    if not data.train:
        raise InvalidInput("candidates", "every accepted memory is held out for validation",
                           "accept more candidates, or lower the validation fraction")
    quantized = base.quantizable()
    model, tokenizer = base.load(folder, quantize=quantized)
    peft = wrap(model, hyper, registry.path(parent.version) if parent else None, quantized)
    work = registry.work(user)
    result = train(peft, tokenizer, data.train, hyper, work, progress=progress,
                   quantized=quantized, key=run_key(data.hash, hyper, start, base_id))
    active = registry.active(user)
    compared = [NEW]
    if gate and active is not None:
        peft.load_adapter(str(registry.path(active.version)), adapter_name=ACTIVE)
        compared.append(ACTIVE)
    scores = evaluate.compare(peft, tokenizer, data, texts or evaluate.general_text(), compared)
    metrics = {"base": scores["base"], "adapter": scores[NEW],
               "train_loss": result.losses[-1] if result.losses else None,
               "examples": len(data.train)}
    promoted, reason = True, "trained"
    if ACTIVE in scores:
        metrics["active"] = scores[ACTIVE]
        tolerance = settings(host.policy).train_perplexity_tolerance
        promoted, reason = evaluate.not_worse(scores[NEW], scores[ACTIVE], tolerance)
    adapter = None
    if promoted:
        record = Adapter(version="", user=user, base=str(folder.resolve()), base_hash=base_id,
                         dataset_hash=data.hash, memory_ids=tuple(data.memory_ids),
                         valid_ids=tuple(data.valid_ids), hyper=asdict(hyper), metrics=metrics,
                         created_at=format_time(host.clock.now()), parent=start,
                         domains=tuple(domains), seconds=result.seconds, quantized=quantized)
        adapter = registry.register(
            record, lambda d: peft.save_pretrained(str(d), selected_adapters=[NEW]))
    shutil.rmtree(work, ignore_errors=True)  # finished: nothing left to resume
    return Outcome(adapter, promoted, reason, metrics, result)


def queue(host: Host, registry: Registry, user: str) -> list[str]:
    """What waits to be learnt: accepted memories no adapter of the user's learnt or held
    out, and learnt memories the user rated or corrected since the active adapter."""
    active = registry.active(user)
    known = set(active.memory_ids) | set(active.valid_ids) if active else set()
    waiting = [c.memory.id for c in candidates(host, user, state="accepted")
               if c.memory.id not in known]
    if active is not None:
        since = parse_time(active.created_at, "created_at")
        for memory_id in active.memory_ids:
            if any(e.type is EventType.FEEDBACK and parse_time(str(e.payload["at"]), "at") > since
                   for e in host.store.history(memory_id) if e.payload):
                waiting.append(memory_id)
    return waiting


def due(host: Host, registry: Registry, user: str) -> tuple[bool, str]:
    """Whether an update should run now, and why (or why not)."""
    rules = settings(host.policy)
    active = registry.active(user)
    if active is not None and tainted(host, active):
        return True, f"{active.version} carries forgotten memories"
    waiting = queue(host, registry, user)
    if len(waiting) >= rules.train_after_accepted:
        return True, f"{len(waiting)} memories wait to be learnt"
    if active is not None and waiting and rules.train_every_hours > 0:
        age = host.clock.now() - parse_time(active.created_at, "created_at")
        if age >= timedelta(hours=rules.train_every_hours):
            return True, f"{active.version} is {age.total_seconds() / 3600:.0f} hours old"
    return False, (f"{len(waiting)} of {rules.train_after_accepted} memories wait to be "
                   "learnt" + (f"; {active.version} is recent" if active else ""))


def update(host: Host, registry: Registry, user: str, base_path: str | Path | None = None, *,
           force: bool = False, texts: Sequence[str] | None = None,
           progress: Progress | None = None, hyper: Hyper | None = None) -> Outcome:
    """Continuous learning: when `due` (or `force`d), continue the active adapter on every
    accepted memory and promote the result only if it is not worse; an active adapter with
    forgotten memories is replaced by one trained afresh without them, ungated."""
    ready, why = due(host, registry, user)
    if not (ready or force):
        return Outcome(None, False, f"not due: {why}")
    active = registry.active(user)
    if base_path is None:
        if active is None:
            raise InvalidInput("base", f"{user} has no adapter to continue",
                               "give --base PATH for the first one")
        base_path = active.base
    carries = bool(active and tainted(host, active))
    hyper = hyper or Hyper.of(active.hyper if active else {})
    start = active.version if active is not None and not carries else None
    outcome = run(host, registry, user, base_path, hyper=hyper, texts=texts, progress=progress,
                  start=start, gate=active is not None and not carries,
                  domains=active.domains if active else ())
    outcome.reason = f"{why}; {outcome.reason}" if ready else f"on request; {outcome.reason}"
    return outcome


def evaluate_version(host: Host, registry: Registry, version: str,
                     texts: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Base vs adapter on the memories the adapter learnt (those still remembered: trained
    questions, paraphrases, and its held-out validation memories) and on general text."""
    from peft import PeftModel

    adapter = registry.get(version)
    folder = base.check_folder(adapter.base)
    if base.base_hash(folder) != adapter.base_hash:
        raise InvalidInput("base", f"{folder} changed since {version} was trained on it",
                           "restore the base model the adapter was trained on")
    hyper = Hyper.of(adapter.hyper)
    data = dataset_for(host, adapter.user, hyper, ids=[*adapter.memory_ids, *adapter.valid_ids])
    model, tokenizer = base.load(folder, quantize=base.quantizable())
    peft = PeftModel.from_pretrained(model, str(registry.path(version)), adapter_name=NEW)
    scores = evaluate.compare(peft, tokenizer, data, texts or evaluate.general_text(), [NEW])
    return {"base": scores["base"], "adapter": scores[NEW]}
