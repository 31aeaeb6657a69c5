"""`engram plm`: a personal model that fits the edge (docs/plm.md): the teacher's logged
answers as a distillation set, the user's domains and what of the network they use, and the
whole chain (distil → track → prune → recover → quantize). The model parts need the `plm`
extra."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from engram.cli.options import DataOpt, JsonOpt, UserOpt, emit_json, fail, open_memory, out
from engram.store import DEFAULT_DATA

plm_app = typer.Typer(no_args_is_help=True,
                      help="A personal model: distillation, pruning and quantization.")

BaseOpt = Annotated[str, typer.Option("--base", help="The student: a local Hugging Face causal "
                                                     "LM folder.")]


@plm_app.command("teacher-data")
def teacher_data(user: UserOpt, output: Annotated[Path, typer.Option(
        "--out", help="JSONL file to write (query, response, teacher, memory_id).")],
        teacher: Annotated[str | None, typer.Option(
            "--teacher", help="Only this teacher's answers (default: every logged one).")]
        = None,
        data: DataOpt = DEFAULT_DATA, as_json: JsonOpt = False) -> None:
    """Write the user's logged teacher exchanges as a distillation set."""
    from engram.plm import teacher as teachers

    with open_memory(data) as mem:
        manifest = teachers.write(teachers.examples(mem, user, teacher), output)
    if as_json:
        emit_json(manifest)
    else:
        out.print(f"wrote {manifest['examples']} exchanges of {', '.join(manifest['teachers'])}"
                  f" to {output}", highlight=False)


@plm_app.command("domains")
def domains(user: UserOpt, base: BaseOpt, data: DataOpt = DEFAULT_DATA,
            as_json: JsonOpt = False) -> None:
    """The user's domains (from memory) and the share of heads and FFN neurons each uses."""
    from engram.plm import activations, teacher
    from engram.train import base as bases

    with open_memory(data) as mem:
        by_domain = teacher.user_texts(mem, user)
        model, tokenizer = bases.load(bases.check_folder(base))
        rows = activations.domain_report(model, tokenizer, by_domain, bos=bases.bos(tokenizer))
    if as_json:
        emit_json(rows)
        return
    table = _table(f"domains of {user} on {Path(base).name}", "domain", "texts", "share",
                   "heads used", "neurons used", "overlap")
    for row in rows:
        table.add_row(row["domain"], str(row["texts"]), _pct(row["share"]),
                      _pct(row["heads_used"]), _pct(row["neurons_used"]), _pct(row["overlap"]))
    out.print(table)
    out.print("used: the share of units that carry 90 % of the domain's activation; overlap: "
              "of its top half of neurons, those also in the top half over all domains",
              highlight=False)


def _pct(value: float) -> str:
    return f"{100 * value:.0f} %"


def _table(title: str, *columns: str) -> Table:
    """A table whose first column names the row and the others hold numbers."""
    table = Table(title=title)
    for i, name in enumerate(columns):
        table.add_column(name, justify="right" if i else "left")
    return table


@contextmanager
def _progress(quiet: bool) -> Iterator[Any]:
    """A Rich bar per stage (none with --json)."""
    if quiet:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=out, transient=True) as progress:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        yield update


@plm_app.command("build")
def build(user: UserOpt, base: BaseOpt,
          teacher: Annotated[str, typer.Option(
              "--teacher", help="A local teacher model folder (soft targets), or the name of "
                                "a logged teacher such as openai:gpt-4o (its answers as hard "
                                "targets).")],
          output: Annotated[Path, typer.Option("--out", help="New folder for the models and "
                                                             "the report.")],
          fraction: Annotated[float, typer.Option(
              "--fraction", help="Share of heads and FFN neurons to prune, in (0, 1).")] = 0.5,
          quantize: Annotated[str, typer.Option(
              "--quantize", help="int8 (GGUF Q8_0), 4bit (bitsandbytes, CUDA) or none.")]
          = "int8",
          steps: Annotated[int, typer.Option("--steps", help="Distillation steps.")] = 60,
          recovery_steps: Annotated[int, typer.Option(
              "--recovery-steps", help="Recovery distillation steps after pruning.")] = 60,
          alpha: Annotated[float, typer.Option(
              "--alpha", help="Weight of the teacher's soft targets in the loss.")] = 0.5,
          temperature: Annotated[float, typer.Option(
              "--temperature", help="Softmax temperature of the soft targets.")] = 2.0,
          lora: Annotated[bool, typer.Option(
              "--lora", help="Distil into a LoRA on the student, then merge it.")] = False,
          text: Annotated[Path | None, typer.Option(
              "--text", help="General text for perplexity (paragraphs split by blank lines; "
                             "default: a bundled English sample).")] = None,
          data: DataOpt = DEFAULT_DATA, as_json: JsonOpt = False) -> None:
    """Distil, prune, recover and quantize a personal model; print the report."""
    from engram.plm import distill, pipeline
    from engram.train.evaluate import general_text

    if text is not None and not text.is_file():
        fail(f"text: {text} is not a file; give a text file of paragraphs")
    with open_memory(data) as mem:
        options = pipeline.Options(
            fraction=fraction, quantize=quantize, lora=lora,
            distillation=distill.Hyper(steps=steps, alpha=alpha, temperature=temperature),
            recovery=distill.Hyper(steps=recovery_steps, alpha=alpha, temperature=temperature),
            general=general_text(text) if text else None)
        with _progress(as_json) as progress:
            report = pipeline.build(mem, user, base, teacher, output, options, progress)
    if as_json:
        emit_json(report)
        return
    table = _table(f"personal model of {user}: {report['distillation']}", "stage", "parameters",
                   "MB on disk", "user ppl", "general ppl")
    for row in report["stages"]:
        table.add_row(row["stage"], f"{row['parameters']:,}", f"{row['bytes'] / 1e6:.2f}",
                      f"{row['user_perplexity']:.3f}", f"{row['general_perplexity']:.3f}")
    out.print(table)
    out.print(f"pruned: {report['pruned']}\nmodel: {report['model']}\n"
              f"report: {report['report']}", highlight=False)
