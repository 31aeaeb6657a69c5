"""`engram state`: saved model state (KV caches of local models, Ollama contexts) per session:
generate with resume, list, show, branch, verify, gc, export and import (docs/state.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from engram.cli.options import DataOpt, JsonOpt, emit_json, fail, open_memory, out
from engram.errors import EngramError
from engram.lifecycle import config
from engram.state.manifest import Manifest
from engram.state.settings import DEFAULT_MAX_BYTES
from engram.state.store import StateStore, state_root
from engram.store import DEFAULT_DATA

state_app = typer.Typer(no_args_is_help=True,
                        help="Saved model state per session: KV caches of local models "
                             "(hf:PATH) and Ollama contexts.")

StateDirOpt = Annotated[str | None, typer.Option(
    "--state-dir", envvar="ENGRAM_STATE",
    help="Folder of saved states (default: the store's state/ folder; env ENGRAM_STATE).")]
SessionArg = Annotated[str, typer.Argument(metavar="SESSION", help="The session's name.")]


def open_states(data: str, state_dir: str | None) -> StateStore:
    try:
        settings = config.load(config.path_for(data))
    except EngramError as exc:
        fail(str(exc))
    return StateStore(state_root(data, state_dir),
                      max_bytes=int(getattr(settings, "state_max_bytes", DEFAULT_MAX_BYTES)))


@state_app.command("generate")
def generate(
    model: Annotated[str, typer.Option("--model", "-m", help="hf:PATH, a local Hugging Face "
                                       "model folder (config, safetensors, tokenizer).")],
    session: Annotated[str, typer.Option("--session", help="The session to continue.")],
    prompt_file: Annotated[Path, typer.Option(
        "--prompt-file", help="The whole prompt so far (its saved prefix is restored).")],
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1,
                                                help="Most tokens to generate.")] = 64,
    storage: Annotated[str, typer.Option(
        "--storage", help="How the state is stored: native (the model's dtype, exact), "
                          "float16, bfloat16 or int8 (per-channel scales).")] = "native",
    append: Annotated[bool, typer.Option(
        "--append", help="The file's text follows the session's saved prefix (for a branch "
                         "or a merge), instead of being the whole prompt.")] = False,
    data: DataOpt = DEFAULT_DATA, state_dir: StateDirOpt = None, as_json: JsonOpt = False,
) -> None:
    """Continue SESSION with the prompt in a file: restore, prefill the rest, decode greedily,
    save the state again."""
    from engram.state.provider import local_model

    states = open_states(data, state_dir)
    try:
        prompt = prompt_file.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"--prompt-file: cannot read {prompt_file} ({exc.strerror}); pass a text file")
    try:
        resumable = local_model(model, states, storage)
        ids = resumable.model.encode(prompt)
        if append:
            ids = [*states.require(session).tokens, *resumable.model.encode_more(prompt)]
        generation = resumable.generate(session, ids, max_new_tokens=max_new_tokens)
    except EngramError as exc:
        fail(str(exc))
    if as_json:
        emit_json(generation.to_dict())
        return
    out.print(generation.text, markup=False, highlight=False)
    how = (f"restored {generation.restored_tokens} tokens ({generation.source})"
           if generation.restored else "nothing restored")
    out.print(f"[dim]{how}, prefilled {generation.prefilled_tokens}, first token after "
              f"{generation.ttft_ms:.0f} ms[/dim]")


@state_app.command("list")
def list_(data: DataOpt = DEFAULT_DATA, state_dir: StateDirOpt = None,
          as_json: JsonOpt = False) -> None:
    """Saved sessions, most recently used first, with their size."""
    states = open_states(data, state_dir)
    sessions = states.sessions()
    if as_json:
        emit_json({"bytes": states.bytes_used(), "max_bytes": states.max_bytes,
                   "sessions": [_summary(m) for m in sessions]})
        return
    table = Table(title=f"saved states: {states.bytes_used():,} of {states.max_bytes:,} bytes")
    for name in ("session", "model", "tokens", "storage", "bytes", "used", "from"):
        table.add_column(name)
    for m in sessions:
        table.add_row(m.session, m.fingerprint.model_id, str(len(m.tokens)), m.storage,
                      f"{m.bytes:,}", m.used_at[:19], m.parent or "")
    out.print(table)


@state_app.command("show")
def show(session: SessionArg, data: DataOpt = DEFAULT_DATA, state_dir: StateDirOpt = None,
         as_json: JsonOpt = False) -> None:
    """A saved state: its model, layers, tokens, dtype, bytes, chunks, memories and turns."""
    try:
        manifest = open_states(data, state_dir).require(session)
    except EngramError as exc:
        fail(str(exc))
    summary = _summary(manifest) | {
        "fingerprint": manifest.fingerprint.to_dict(),
        "chunks": [{"start": c.start, "end": c.end, "bytes": c.bytes, "address": c.address}
                   for c in manifest.chunks],
        "memories": manifest.memories}
    if as_json:
        emit_json(summary)
        return
    for key in ("session", "model", "layers", "tokens", "dtype", "storage", "bytes", "turns",
                "created_at", "used_at", "parent"):
        out.print(f"{key:>10}: {summary[key]}", markup=False, highlight=False)
    out.print(f"{'chunks':>10}: {len(manifest.chunks)} "
              f"({', '.join(f'{c.start}-{c.end}' for c in manifest.chunks)})", markup=False)
    for memory, (start, end) in manifest.memories.items():
        out.print(f"{'memory':>10}: {memory} at tokens {start}-{end}", markup=False)


@state_app.command("branch")
def branch(session: SessionArg,
           new: Annotated[str, typer.Argument(metavar="NEW", help="The new session's name.")],
           data: DataOpt = DEFAULT_DATA, state_dir: StateDirOpt = None) -> None:
    """Start session NEW from SESSION's saved state (the prefix's chunks are shared)."""
    try:
        manifest = open_states(data, state_dir).branch(session, new)
    except EngramError as exc:
        fail(str(exc))
    out.print(f"{new} starts from {session} ({len(manifest.tokens)} tokens, "
              f"{len(manifest.chunks)} shared chunks)", highlight=False)


@state_app.command("merge")
def merge(first: Annotated[str, typer.Argument(metavar="FIRST", help="The state that comes "
                                               "first (a persona, say).")],
          second: Annotated[str, typer.Argument(metavar="SECOND", help="The state placed after "
                                                "it, its keys re-rotated.")],
          new: Annotated[str, typer.Argument(metavar="NEW", help="The new session's name.")],
          data: DataOpt = DEFAULT_DATA, state_dir: StateDirOpt = None) -> None:
    """Start session NEW from FIRST's state followed by SECOND's (RoPE keys re-rotated to
    their new positions; continue it with `generate --append`)."""
    from engram.state.merge import merge as merge_states

    try:
        manifest = merge_states(open_states(data, state_dir), first, second, new)
    except EngramError as exc:
        fail(str(exc))
    out.print(f"{new} starts from {first} + {second} ({len(manifest.tokens)} tokens, "
              f"the second moved by {manifest.merged_at} positions)", highlight=False)


@state_app.command("verify")
def verify(data: DataOpt = DEFAULT_DATA, state_dir: StateDirOpt = None,
           as_json: JsonOpt = False) -> None:
    """Check every manifest and chunk (checksums, lengths, addresses); exit 1 on a problem."""
    states = open_states(data, state_dir)
    problems = states.verify()
    if as_json:
        emit_json({"ok": not problems, "sessions": len(states.sessions()),
                   "problems": [{"path": p.path, "problem": p.problem} for p in problems]})
    elif not problems:
        out.print(f"ok: {len(states.sessions())} sessions, {len(states.chunk_files())} chunks "
                  "intact")
    for p in problems if not as_json else ():
        out.print(f"[red]broken[/red] {p.path}: {p.problem}", highlight=False)
    if problems:
        raise typer.Exit(1)


@state_app.command("gc")
def gc(drop: Annotated[list[str] | None, typer.Option(
           "--drop", help="Also forget this session's saved state (repeatable).")] = None,
       max_bytes: Annotated[int | None, typer.Option(
           "--max-bytes", min=0, help="Evict down to this many bytes (default: "
                                      "state.max_bytes).")] = None,
       data: DataOpt = DEFAULT_DATA, state_dir: StateDirOpt = None,
       as_json: JsonOpt = False) -> None:
    """Drop broken and unused chunks, then evict the least recently used sessions to the cap."""
    states = open_states(data, state_dir)
    dropped = [s for s in drop or [] if states.drop(s)]
    evicted, freed = states.gc(max_bytes)
    if as_json:
        emit_json({"dropped": dropped, "evicted": evicted, "freed_bytes": freed,
                   "bytes": states.bytes_used()})
        return
    out.print(f"freed {freed:,} bytes; dropped {len(dropped)} and evicted {len(evicted)} "
              f"sessions; {states.bytes_used():,} bytes held", highlight=False)


@state_app.command("export")
def export(output: Annotated[Path, typer.Argument(metavar="OUT", help="File to write (tar).")],
           session: Annotated[list[str] | None, typer.Option(
               "--session", help="Only this session (repeatable; default: all).")] = None,
           data: DataOpt = DEFAULT_DATA, state_dir: StateDirOpt = None,
           as_json: JsonOpt = False) -> None:
    """Write saved states and Ollama contexts to one file, for a device without sync."""
    from engram.state import travel

    states = open_states(data, state_dir)
    with open_memory(data) as mem:
        carried = travel.export(states, output, session or (),
                                travel.contexts_of(mem.store, session or ()))
    if as_json:
        emit_json(carried.to_dict())
        return
    out.print(f"wrote {len(carried.sessions)} sessions ({carried.chunks} chunks) and "
              f"{carried.contexts} Ollama contexts to {output} ({carried.bytes:,} bytes)",
              highlight=False)


@state_app.command("import")
def import_(file: Annotated[Path, typer.Argument(help="A file from `engram state export`.")],
            data: DataOpt = DEFAULT_DATA, state_dir: StateDirOpt = None,
            as_json: JsonOpt = False) -> None:
    """Take in saved states and Ollama contexts (all checked before any is written)."""
    from engram.state import travel

    states = open_states(data, state_dir)
    with open_memory(data) as mem:
        carried, contexts = travel.import_(states, file)
        travel.keep_contexts(mem.store, contexts)
    if as_json:
        emit_json(carried.to_dict())
        return
    out.print(f"imported {len(carried.sessions)} sessions ({carried.chunks} chunks) and "
              f"{carried.contexts} Ollama contexts", highlight=False)


def _summary(m: Manifest) -> dict[str, object]:
    return {"session": m.session, "model": m.fingerprint.model_id,
            "layers": m.fingerprint.layers, "tokens": len(m.tokens),
            "dtype": m.fingerprint.dtype, "storage": m.storage, "bytes": m.bytes,
            "turns": m.turns, "created_at": m.created_at, "used_at": m.used_at,
            "parent": m.parent, "memories": len(m.memories), "merged_at": m.merged_at}
