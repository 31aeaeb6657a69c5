"""`engram train`: LoRA adapters learnt from a user's memories (docs/train.md). Candidates and
curation, datasets, runs and continuous updates, the adapter registry, evaluation, selection
and merge-and-export. Every command takes `--json`; the model parts need the `train` extra."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from engram.cli.options import DataOpt, JsonOpt, UserOpt, emit_json, fail, open_memory, out
from engram.errors import EngramError
from engram.memory import Memory
from engram.store import DEFAULT_DATA
from engram.train import candidates as cands
from engram.train import dataset, pipeline
from engram.train.lora import Hyper
from engram.train.registry import Adapter, Registry, root_for

train_app = typer.Typer(no_args_is_help=True,
                        help="Learn from memory: LoRA adapters trained on a user's memories.")

AdaptersOpt = Annotated[str | None, typer.Option(
    "--adapters", envvar="ENGRAM_ADAPTERS",
    help="Adapter registry folder (default: the store's adapters/; env ENGRAM_ADAPTERS).")]
IdsArg = Annotated[list[str], typer.Argument(metavar="ID...", help="Candidate memory ids.")]
VersionArg = Annotated[str, typer.Argument(metavar="VERSION", help="An adapter version, e.g. v2.")]
BaseOpt = Annotated[str, typer.Option("--base", help="Base model: a local Hugging Face causal "
                                                     "LM folder.")]
TextOpt = Annotated[Path | None, typer.Option(
    "--text", help="Held-out general text for perplexity (paragraphs split by blank lines; "
                   "default: a bundled English sample).")]
UserArg = Annotated[str, typer.Option("--user", "-u", help="The user whose adapter it is.")]
OwnerOpt = Annotated[str | None, typer.Option("--user", "-u", help="Refuse ids of other users.")]
AskOpt = Annotated[str | None, typer.Option(
    "--questions-model", help="Have this model (KIND:MODEL, as for `engram chat`) write the "
                              "questions instead of the offline templates.")]


def _asker(spec: str | None) -> Callable[[str], str] | None:
    """A prompt → answer function of the model `spec` names, or None for the templates."""
    if spec is None:
        return None
    from engram.llm import load_provider

    try:
        provider = load_provider(spec)
    except EngramError as exc:
        fail(str(exc))
    return lambda prompt: provider.complete([{"role": "user", "content": prompt}])


@contextmanager
def opened(data: str, adapters: str | None) -> Iterator[tuple[Memory, Registry]]:
    """The store and its adapter registry; an EngramError becomes one line, exit code 2."""
    with open_memory(data) as mem:
        yield mem, Registry(root_for(data, adapters))


def _texts(path: Path | None) -> list[str] | None:
    if path is None:
        return None
    if not path.is_file():
        fail(f"text: {path} is not a file; give a text file of paragraphs")
    from engram.train.evaluate import general_text
    return general_text(path)


@train_app.command("candidates")
def candidates(user: UserOpt, state: Annotated[str | None, typer.Option(
        "--state", help="Only pending, accepted or rejected ones.")] = None,
        data: DataOpt = DEFAULT_DATA, adapters: AdaptersOpt = None,
        as_json: JsonOpt = False) -> None:
    """List the memories worth learning, best first, with score and reason."""
    with opened(data, adapters) as (mem, _):
        found = cands.candidates(mem, user, state=state)
    if as_json:
        emit_json([c.to_dict() for c in found])
        return
    table = Table(title=f"training candidates of {user}")
    for name in ("id", "score", "state", "memory", "reason"):
        table.add_column(name)
    for c in found:
        table.add_row(c.memory.id, f"{c.score:.3f}", c.state, c.memory.content, c.reason)
    out.print(table)


def _curate(ids: list[str], accept: bool, user: str | None, data: str,
            adapters: str | None, as_json: bool) -> None:
    with opened(data, adapters) as (mem, _):
        done = cands.curate(mem, ids, accept, user)
    word = "accepted" if accept else "rejected"
    if as_json:
        emit_json({word: done})
    else:
        out.print(f"{word} {len(done)} memories", highlight=False)


@train_app.command("accept")
def accept(ids: IdsArg, user: OwnerOpt = None, data: DataOpt = DEFAULT_DATA,
           adapters: AdaptersOpt = None, as_json: JsonOpt = False) -> None:
    """Accept candidates for training (an event each, in the log)."""
    _curate(ids, True, user, data, adapters, as_json)


@train_app.command("reject")
def reject(ids: IdsArg, user: OwnerOpt = None, data: DataOpt = DEFAULT_DATA,
           adapters: AdaptersOpt = None, as_json: JsonOpt = False) -> None:
    """Reject candidates: they are left out of every dataset (an event each, in the log)."""
    _curate(ids, False, user, data, adapters, as_json)


@train_app.command("dataset")
def build_dataset(user: UserOpt, output: Annotated[Path, typer.Option(
        "--out", help="Folder to write the JSONL files and manifest into.")],
        per_memory: Annotated[int, typer.Option(
            "--per-memory", help="Questions trained on per memory.")] = 3,
        questions_model: AskOpt = None, data: DataOpt = DEFAULT_DATA,
        adapters: AdaptersOpt = None, as_json: JsonOpt = False) -> None:
    """Write the accepted candidates as instruction and chat JSONL, with a check report."""
    ask = _asker(questions_model)
    with opened(data, adapters) as (mem, _):
        built = pipeline.dataset_for(mem, user, Hyper(per_memory=per_memory), ask=ask)
        manifest = dataset.write(built, output)
    summary = {"out": str(output), "hash": manifest["hash"], "train": len(built.train),
               "valid": len(built.valid), "probe": len(built.probe),
               "memories": len(built.memory_ids) + len(built.valid_ids),
               "report": built.report.to_dict()}
    if as_json:
        emit_json(summary)
    else:
        out.print(f"wrote {summary['train']} training, {summary['valid']} validation and "
                  f"{summary['probe']} probe examples to {output}", highlight=False)
        for problem in built.report.problems:
            out.print(f"  {problem['check']}: example {problem['example']} "
                      f"({problem['detail']})", highlight=False)
    if not built.report.ok:
        fail(f"dataset: {len(built.report.problems)} problem(s) found (see "
             f"{output / 'manifest.json'}); fix or reject those memories")


class _Bar:
    """A Rich progress bar of optimizer steps with the last loss."""

    def __init__(self, progress: Progress) -> None:
        self.progress, self.task = progress, progress.add_task("training", total=None, loss="")

    def __call__(self, step: int, total: int, loss: float) -> None:
        self.progress.update(self.task, completed=step, total=total, loss=f"loss {loss:.4f}")


@contextmanager
def _progress(quiet: bool) -> Iterator[_Bar | None]:
    if quiet:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[loss]}"), TimeElapsedColumn())
    with Progress(*columns, console=out, transient=True) as progress:
        yield _Bar(progress)


def _said(outcome: pipeline.Outcome) -> None:
    if outcome.adapter is None:
        out.print(f"no new version: {outcome.reason}", highlight=False)
        return
    adapter, m = outcome.adapter, outcome.metrics
    resumed = (f", resumed at step {outcome.result.resumed_from}"
               if outcome.result and outcome.result.resumed_from else "")
    out.print(f"{adapter.version}: {len(adapter.memory_ids)} memories, "
              f"{m['examples']} examples, {adapter.seconds:.1f} s{resumed}; fact recall "
              f"{_pct(m['base']['fact_recall'])} → {_pct(m['adapter']['fact_recall'])}, "
              f"perplexity {m['base']['perplexity']:.3f} → {m['adapter']['perplexity']:.3f}"
              f" ({outcome.reason})", highlight=False)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f} %"


@train_app.command("run")
def run(user: UserOpt, base: BaseOpt,
        epochs: Annotated[int | None, typer.Option("--epochs", help="Epochs (default 3).")]
        = None,
        lr: Annotated[float | None, typer.Option("--lr", help="Learning rate (default 2e-4).")]
        = None,
        rank: Annotated[int | None, typer.Option("--rank", help="LoRA rank r (default 16; "
                                                               "alpha is twice it).")] = None,
        batch: Annotated[int | None, typer.Option("--batch", help="Batch size (default 4).")]
        = None,
        accumulation: Annotated[int | None, typer.Option(
            "--accumulation", help="Gradient accumulation steps (default 4).")] = None,
        replay: Annotated[float | None, typer.Option(
            "--replay", help="Weight of the divergence from the base on text it writes itself, "
                             "which keeps general language (default 1; 0: off).")] = None,
        domain: Annotated[list[str] | None, typer.Option(
            "--domain", help="Learn only memories of this domain (repeatable).")] = None,
        questions_model: AskOpt = None, text: TextOpt = None, data: DataOpt = DEFAULT_DATA,
        adapters: AdaptersOpt = None, as_json: JsonOpt = False) -> None:
    """Train an adapter on the accepted candidates, evaluate it and make it the active one
    (an interrupted run resumes from its checkpoint)."""
    overrides: dict[str, Any] = {"epochs": epochs, "lr": lr, "rank": rank, "batch": batch,
                                 "accumulation": accumulation, "replay": replay}
    if rank is not None:
        overrides["alpha"] = 2 * rank
    texts, ask = _texts(text), _asker(questions_model)
    with opened(data, adapters) as (mem, registry), _progress(as_json) as bar:
        hyper = Hyper.of({k: v for k, v in overrides.items() if v is not None})
        outcome = pipeline.run(mem, registry, user, base, hyper=hyper, texts=texts,
                               progress=bar, domains=domain or (), ask=ask)
    if as_json:
        emit_json(outcome.to_dict())
    else:
        _said(outcome)


@train_app.command("update")
def update(user: UserOpt, base: Annotated[str | None, typer.Option(
        "--base", help="Base model folder (default: the active adapter's).")] = None,
        force: Annotated[bool, typer.Option("--force", help="Run even if nothing is due.")]
        = False, text: TextOpt = None, data: DataOpt = DEFAULT_DATA,
        adapters: AdaptersOpt = None, as_json: JsonOpt = False) -> None:
    """Continuous learning: when due (train.* settings) continue the active adapter on the
    new memories and promote it only if it is not worse."""
    texts = _texts(text)
    with opened(data, adapters) as (mem, registry), _progress(as_json) as bar:
        outcome = pipeline.update(mem, registry, user, base, force=force, texts=texts,
                                  progress=bar)
    if as_json:
        emit_json(outcome.to_dict())
    else:
        _said(outcome)


def _row(mem: Memory, adapter: Adapter, active: set[str]) -> dict[str, Any]:
    row = adapter.to_dict(pipeline.tainted(mem, adapter))
    row["active"] = adapter.version in active
    return row


@train_app.command("list")
def list_(user: Annotated[str | None, typer.Option("--user", "-u", help="Only this user.")]
          = None, data: DataOpt = DEFAULT_DATA, adapters: AdaptersOpt = None,
          as_json: JsonOpt = False) -> None:
    """Every registered adapter: version, base, data, metrics, and forgotten memories it
    still carries (tainted)."""
    with opened(data, adapters) as (mem, registry):
        found = registry.adapters(user)
        actives = (registry.active(owner) for owner in {a.user for a in found})
        active = {adapter.version for adapter in actives if adapter is not None}
        rows = [_row(mem, a, active) for a in found]
    if as_json:
        emit_json(rows)
        return
    table = Table(title="adapters")
    for name in ("version", "user", "active", "memories", "fact recall", "perplexity",
                 "created", "tainted"):
        table.add_column(name)
    for r in rows:
        metrics = r["metrics"].get("adapter", {})
        table.add_row(r["version"], r["user"], "*" if r["active"] else "",
                      str(len(r["memory_ids"])), _pct(metrics.get("fact_recall")),
                      f"{metrics.get('perplexity', float('nan')):.3f}", r["created_at"],
                      f"{len(r['tainted'])} forgotten" if r["tainted"] else "")
    out.print(table)


@train_app.command("show")
def show(version: VersionArg, data: DataOpt = DEFAULT_DATA, adapters: AdaptersOpt = None,
         as_json: JsonOpt = False) -> None:
    """One adapter's record: base and hash, dataset hash, memory ids, settings, metrics."""
    with opened(data, adapters) as (mem, registry):
        adapter = registry.get(version)
        active = registry.active(adapter.user)
        row = _row(mem, adapter, {active.version} if active else set())
        row["path"] = str(registry.path(version))
    if as_json:
        emit_json(row)
    else:
        out.print_json(json.dumps(row, default=str))


@train_app.command("use")
def use(version: VersionArg, data: DataOpt = DEFAULT_DATA, adapters: AdaptersOpt = None,
        as_json: JsonOpt = False) -> None:
    """Make VERSION its user's active adapter."""
    with opened(data, adapters) as (_, registry):
        adapter = registry.use(version)
    _say_active(adapter, as_json)


@train_app.command("rollback")
def rollback(user: UserArg, data: DataOpt = DEFAULT_DATA, adapters: AdaptersOpt = None,
             as_json: JsonOpt = False) -> None:
    """Make the user's version before the active one active again."""
    with opened(data, adapters) as (_, registry):
        adapter = registry.rollback(user)
    _say_active(adapter, as_json)


def _say_active(adapter: Adapter, as_json: bool) -> None:
    """What `use` and `rollback` print: the adapter now active for its user."""
    if as_json:
        emit_json({"user": adapter.user, "active": adapter.version})
    else:
        out.print(f"{adapter.user} now uses {adapter.version}", highlight=False)


@train_app.command("eval")
def eval_(version: VersionArg, text: TextOpt = None, data: DataOpt = DEFAULT_DATA,
          adapters: AdaptersOpt = None, as_json: JsonOpt = False) -> None:
    """Base vs adapter: closed-book fact recall on what it learnt, and perplexity on
    held-out general text."""
    texts = _texts(text)
    with opened(data, adapters) as (mem, registry), out.status(f"evaluating {version}"):
        result = pipeline.evaluate_version(mem, registry, version, texts)
    if as_json:
        emit_json(result)
        return
    table = Table(title=f"{version}: base vs adapter")
    names = list(result["base"])
    table.add_column("model")
    for name in names:
        table.add_column(name.replace("_", " "))
    for model, scores in result.items():
        table.add_row(model, *(f"{scores[n]:.3f}" if scores[n] is not None else "n/a"
                               for n in names))
    out.print(table)


@train_app.command("select")
def select(query: Annotated[str, typer.Argument(help="A question to choose an adapter for.")],
           user: UserOpt, data: DataOpt = DEFAULT_DATA, adapters: AdaptersOpt = None,
           as_json: JsonOpt = False) -> None:
    """Which adapter dynamic selection picks for a query (none: the base model)."""
    from engram.train.select import choose

    with opened(data, adapters) as (mem, registry):
        chosen = choose(mem, registry, user, query)
    version = chosen.version if chosen else None
    if as_json:
        emit_json({"query": query, "version": version})
    else:
        out.print(version or "none (the base model answers)", highlight=False)


@train_app.command("export")
def export(version: VersionArg, output: Annotated[Path, typer.Option(
        "--out", help="New folder for the merged Hugging Face model.")],
        data: DataOpt = DEFAULT_DATA, adapters: AdaptersOpt = None,
        as_json: JsonOpt = False) -> None:
    """Merge base + adapter into one Hugging Face model folder."""
    from engram.train.export import merge

    with opened(data, adapters) as (_, registry), out.status(f"merging {version}"):
        folder = merge(registry, version, output)
    if as_json:
        emit_json({"version": version, "out": str(folder)})
    else:
        out.print(f"wrote {version} merged into {folder}", highlight=False)
