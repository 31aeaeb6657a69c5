"""`engram plm build`: distillation → activation tracking → pruning → recovery → quantization,
measured after each stage, written into a temporary folder beside `out` and renamed into place
at the end, so a failure at any stage leaves nothing behind.

    out/pruned/      the pruned, recovered model: a Hugging Face folder (safetensors)
    out/model/       the final model: model.gguf (Q8_0) and an Ollama Modelfile for int8, a
                     bitsandbytes 4-bit Hugging Face folder for 4bit, the pruned one for none
    out/report.json  sizes and perplexities per stage, the settings, what was distilled"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engram.errors import InvalidInput
from engram.plm import activations, distill, gguf_file, prune, quantize, stages, teacher
from engram.train import base, evaluate

if TYPE_CHECKING:
    from engram.memory import Memory

Progress = Callable[[str, int, int], None]  # stage, steps done, steps in all


@dataclass(frozen=True, slots=True)
class Options:
    """The knobs of a build; defaults are the plan's (alpha 0.5, T 2.0, half pruned, int8)."""

    fraction: float = prune.DEFAULT_FRACTION
    quantize: str = "int8"
    distillation: distill.Hyper = field(default_factory=distill.Hyper)
    recovery: distill.Hyper = field(default_factory=distill.Hyper)
    lora: bool = False
    general: Sequence[str] | None = None  # general text for perplexity (default: bundled)


def check_out(out: Path) -> Path:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInput("out", f"{out} already exists", "give a new folder, or delete it")
    return out


def build(mem: Memory, user: str, base_path: str | Path, teacher_spec: str, out: str | Path,
          options: Options = Options(), progress: Progress | None = None) -> dict[str, Any]:
    """Run the chain for `user` and return the report (also written to out/report.json)."""
    target = check_out(Path(out).expanduser())
    prune.check_fraction(options.fraction)
    quantize.check_method(options.quantize)
    folder = base.check_folder(base_path)
    if options.quantize == "int8" and (reason := gguf_file.unsupported(folder)):
        raise InvalidInput("quantize", f"int8 is written as GGUF, and {reason}",
                           "use --quantize none and convert the pruned folder with llama.cpp")
    source = stages.Teacher.parse(teacher_spec)
    data = stages.split(teacher.user_texts(mem, user),
                        source.logged(teacher.examples(mem, user)))
    if source.folder is None and not data.exchanges:
        raise InvalidInput("teacher", f"no logged exchanges answered by {teacher_spec!r}",
                           "give a local teacher folder, or log this teacher's answers first "
                           "(engram config set plm.teacher MODEL)")
    staging = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        report = _chain(folder, source, data, options, staging, progress or _silent)
        report |= {"user": user, "base": str(folder), "teacher": source.spec,
                   "pruned": str(target / "pruned"), "model": str(target / "model"),
                   "report": str(target / "report.json"),
                   "options": {**asdict(options), "general": None}}
        (staging / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        if target.exists():
            target.rmdir()
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report


def _silent(stage: str, done: int, total: int) -> None:
    """No progress to show."""


def _chain(folder: Path, source: stages.Teacher, data: stages.UserData, options: Options,
           staging: Path, progress: Progress) -> dict[str, Any]:
    general = list(options.general or evaluate.general_text())
    student, tokenizer = base.load(folder)
    activations.layers_of(student)  # a student pruning cannot cut is refused before training
    bos = base.bos(tokenizer)
    base_bytes = stages.folder_bytes(folder)
    rows = [stages.measure("base", student, tokenizer, data, general, base_bytes)]

    teacher_model, mode, learn = _teacher(source, tokenizer, data, bos)
    student = _distil(student, tokenizer, learn, teacher_model, options, bos, progress)
    rows.append(stages.measure("distilled", student, tokenizer, data, general, base_bytes))
    del teacher_model

    progress("tracking", 0, 1)
    acts = activations.track(student, tokenizer, data.learn + [e.query for e in data.exchanges],
                             bos=bos)
    chosen = prune.plan(acts, student.config, options.fraction)
    pruned = prune.prune(student, chosen)
    progress("tracking", 1, 1)
    rows.append(stages.measure("pruned", pruned, tokenizer, data, general, 0))

    _run(pruned, tokenizer, learn, student, options.recovery, bos, progress, "recovery")
    pruned.save_pretrained(staging / "pruned")
    tokenizer.save_pretrained(staging / "pruned")
    rows[-1]["bytes"] = stages.folder_bytes(staging / "pruned")  # the same shapes
    rows.append(stages.measure("recovered", pruned, tokenizer, data, general, rows[-1]["bytes"]))

    final = _quantize(pruned, tokenizer, data, general, options.quantize, staging)
    rows += final
    return {"stages": rows, "distillation": mode, "fraction": options.fraction,
            "quantization": options.quantize, "examples": len(learn),
            "held_out_texts": len(data.held_out),
            "kept": {"heads": len(chosen.heads[0]), "kv_heads": len(chosen.kv_heads[0]),
                     "neurons": len(chosen.neurons[0])}}


def _teacher(source: stages.Teacher, tokenizer: Any, data: stages.UserData,
             bos: bool) -> tuple[Any | None, str, list[distill.Sample]]:
    """The teacher model (None for hard targets only), how it teaches, and the samples."""
    if source.folder is None:
        return None, f"hard targets: the logged answers of {source.spec}", \
            stages.samples(tokenizer, data)
    model, theirs = base.load(source.folder)
    reason = distill.same_vocabulary(tokenizer, theirs)
    if reason is None:
        return model, "soft targets: the local teacher's logits", stages.samples(tokenizer, data)
    if not data.exchanges:
        raise InvalidInput("teacher", f"the teacher's tokenizer differs from the student's "
                           f"({reason}) and no logged queries are there to answer as text",
                           "log exchanges first, or give a teacher with the student's tokenizer")
    answers = evaluate.answer(model, theirs, [e.query for e in data.exchanges])
    return None, f"text-level: the teacher's tokenizer differs ({reason}), so the student " \
        "learns the teacher's generated answers as hard targets", \
        stages.samples(tokenizer, data, answers)


def _distil(student: Any, tokenizer: Any, learn: list[distill.Sample], teacher_model: Any,
            options: Options, bos: bool, progress: Progress) -> Any:
    """The student after distillation, into its weights or through a merged LoRA."""
    if not options.lora:
        _run(student, tokenizer, learn, teacher_model, options.distillation, bos, progress,
             "distillation")
        return student
    from peft import LoraConfig, get_peft_model

    wrapped = get_peft_model(student, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0,
                                                 target_modules=base.target_modules(student),
                                                 task_type="CAUSAL_LM"))
    _run(wrapped, tokenizer, learn, teacher_model, options.distillation, bos, progress,
         "distillation")
    return wrapped.merge_and_unload()


def _run(model: Any, tokenizer: Any, learn: list[distill.Sample], teacher_model: Any,
         hyper: distill.Hyper, bos: bool, progress: Progress, stage: str) -> None:
    progress(stage, 0, hyper.steps)
    distill.distil(model, tokenizer, learn, teacher_model, hyper, bos=bos,
                   progress=lambda step, _: progress(stage, step, hyper.steps))


def _quantize(model: Any, tokenizer: Any, data: stages.UserData, general: Sequence[str],
              method: str, staging: Path) -> list[dict[str, Any]]:
    """The final model in `staging/model` and its report row (none when not quantized)."""
    final = staging / "model"
    if method == "4bit":
        quantized, _ = base.load(staging / "pruned", quantize=True)
        quantized.save_pretrained(final)
        tokenizer.save_pretrained(final)
        return [stages.measure("4bit", quantized, tokenizer, data, general,
                               stages.folder_bytes(final))]
    if method == "none":
        shutil.copytree(staging / "pruned", final)
        return []
    final.mkdir()
    path = gguf_file.write(model, staging / "pruned", final / "model.gguf")
    (final / "Modelfile").write_text("FROM ./model.gguf\n", encoding="utf-8")  # ollama create
    return [stages.measure("int8", quantize.q8_0_copy(model), tokenizer, data, general,
                           path.stat().st_size)]

