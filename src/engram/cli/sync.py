"""`engram sync`: replicate the event log between stores (docs/sync.md). Bundles here; other
transports register their commands on `sync_app` too."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from engram.cli.options import DataOpt, JsonOpt, emit_json, fail, open_memory, out
from engram.cli.state import StateDirOpt, open_states
from engram.state import travel
from engram.store import DEFAULT_DATA
from engram.sync import peers
from engram.sync import vector as vectors

sync_app = typer.Typer(no_args_is_help=True,
                       help="Sync with other stores: bundles of events, peers, status.")

PeerOpt = Annotated[str | None, typer.Option(
    "--peer", help="Send only what this peer lacks, by what we know it holds (default: "
                   "every event).")]
ScopeOpt = Annotated[str | None, typer.Option(
    "--user", "-u", help="Carry only this user's memories; other events travel redacted.")]
FromOpt = Annotated[str | None, typer.Option(
    "--peer", help="The peer the bundle comes from (default: found by its device id).")]


@sync_app.command("export")
def export(output: Annotated[Path, typer.Argument(metavar="OUT", help="Bundle file to write.")],
           peer: PeerOpt = None, user: ScopeOpt = None,
           states: Annotated[bool, typer.Option(
               "--states", help="Also carry the saved model states and Ollama contexts (of "
                                "--user's chats, if given) in OUT.states.tar beside the "
                                "bundle.")] = False,
           data: DataOpt = DEFAULT_DATA, state_dir: StateDirOpt = None,
           as_json: JsonOpt = False) -> None:
    """Write a bundle of the events a peer lacks (gzip JSON lines, deterministic)."""
    beside = travel.beside(output)
    carried = None
    with open_memory(data) as mem, out.status(f"writing {output.name}"):
        report = mem.sync_export(output, peer=peer, user=user)
        beside.unlink(missing_ok=True)  # an older export's states must not travel with this
        if states:
            held = open_states(data, state_dir)
            chosen = travel.of_user(held, user)
            if chosen or user is None:  # none of a user's: no file (an empty list means all)
                carried = travel.export(held, beside, chosen,
                                        travel.contexts_of(mem.store, user=user))
    if as_json:
        emit_json(report.to_dict() | {"states": carried.to_dict() if carried else None})
        return
    whom = f" for {peer}" if peer else ""
    scope = f" ({user}'s memories)" if user else ""
    out.print(f"wrote {report.events} events{whom}{scope} to {output} "
              f"({report.bytes:,} bytes)", highlight=False)
    if carried is not None:
        out.print(f"and {len(carried.sessions)} saved states ({carried.chunks} chunks) and "
                  f"{carried.contexts} Ollama contexts to {beside} ({carried.bytes:,} bytes)",
                  highlight=False)


@sync_app.command("import")
def import_(file: Annotated[Path, typer.Argument(help="A bundle from `engram sync export`.")],
            peer: FromOpt = None, data: DataOpt = DEFAULT_DATA, state_dir: StateDirOpt = None,
            as_json: JsonOpt = False) -> None:
    """Apply a bundle: all or nothing, events already held skipped (twice is a no-op); saved
    states beside it (FILE.states.tar) are checked first and taken in after the events."""
    beside = travel.beside(file)
    held = open_states(data, state_dir) if beside.exists() else None
    with open_memory(data) as mem, out.status("importing") as status:
        checked = travel.check(held, beside) if held is not None else None
        report = mem.sync_import(file, peer=peer, stage=status.update)
        carried = None
        if held is not None and checked is not None:
            carried, contexts = travel.take(held, checked)
            travel.keep_contexts(mem.store, contexts)
    if as_json:
        emit_json(report.to_dict() | {"states": carried.to_dict() if carried else None})
        return
    sender = f" from {report.peer}" if report.peer else ""
    out.print(f"imported {report.new} new events{sender} ({report.skipped} already held) "
              f"of {len(report.devices)} devices", highlight=False)
    if carried is not None:
        out.print(f"and {len(carried.sessions)} saved states ({carried.chunks} chunks) and "
                  f"{carried.contexts} Ollama contexts", highlight=False)


@sync_app.command("status")
def status(data: DataOpt = DEFAULT_DATA, as_json: JsonOpt = False) -> None:
    """Per peer: the last exchange, and events ahead and behind (from version vectors)."""
    with open_memory(data) as mem:
        mine = vectors.of_heads(mem.store.heads())
        rows = peers.status(mine, peers.load(mem.store))
        device = mem.store.device_id
    if as_json:
        emit_json({"device_id": device, "vector": mine, "peers": [r.to_dict() for r in rows]})
        return
    table = Table(title=f"sync status of {device} ({vectors.ahead(mine, {})} events)")
    for name in ("peer", "url", "last exchange", "last sent", "ahead", "behind"):
        table.add_column(name)
    for row in rows:
        p = row.peer
        table.add_row(p.name, p.url or "", _when(p.last_exchange), _when(p.last_sent),
                      str(row.ahead), str(row.behind))
    out.print(table)


@sync_app.command("peers")
def peers_(data: DataOpt = DEFAULT_DATA, as_json: JsonOpt = False) -> None:
    """The known peers: name, URL, device id."""
    with open_memory(data) as mem:
        known = peers.load(mem.store)
    if as_json:
        emit_json([p.to_dict() for p in known.values()])
        return
    table = Table(title="sync peers")
    for name in ("peer", "url", "device"):
        table.add_column(name)
    for p in known.values():
        table.add_row(p.name, p.url or "", p.device_id or "")
    out.print(table)


@sync_app.command("peer-add")
def peer_add(name: Annotated[str, typer.Argument(help="A name for the peer, e.g. edge-board.")],
             url: Annotated[str | None, typer.Argument(
                 help="Where its `engram serve` listens, if it has one.")] = None,
             data: DataOpt = DEFAULT_DATA) -> None:
    """Name a peer (or give a known one a URL); what we know it holds is kept."""
    with open_memory(data) as mem:
        peers.add(mem.store, name, url)
    out.print(f"peer {name}" + (f" at {url}" if url else ""), highlight=False)


@sync_app.command("peer")
def peer(
    url: Annotated[str, typer.Argument(
        help="The peer's `engram serve` base URL, e.g. http://192.168.1.20:8765, or the name "
             "of a peer added with a URL.")],
    key: Annotated[str | None, typer.Option(
        "--key", envvar="ENGRAM_SYNC_KEY",
        help="The peer's API key with the sync scope (env ENGRAM_SYNC_KEY); none for a "
             "loopback peer without keys.")] = None,
    push_only: Annotated[bool, typer.Option(
        "--push", help="Only send what the peer lacks.")] = False,
    pull_only: Annotated[bool, typer.Option(
        "--pull", help="Only receive what this store lacks.")] = False,
    batch: Annotated[int, typer.Option(
        "--batch", help="Events per request; each batch is one transaction.")] = 1000,
    user: Annotated[str | None, typer.Option(
        "--user", "-u", help="Exchange only this user's memories in full, both ways; other "
                             "events travel redacted.")] = None,
    states: Annotated[bool, typer.Option(
        "--states", help="Also exchange saved model states and Ollama contexts (only the "
                         "chunks each side lacks), after the events.")] = False,
    data: DataOpt = DEFAULT_DATA, state_dir: StateDirOpt = None,
    as_json: JsonOpt = False) -> None:
    """Exchange events both ways with another `engram serve` over HTTP, in batches, resumable."""
    from rich.progress import Progress

    from engram.state import peer as state_peer

    if push_only and pull_only:
        fail("--push, --pull: both given; choose one, or neither to exchange both ways")
    with open_memory(data) as mem:
        named = peers.get(mem.store, url) if not url.startswith(("http://", "https://")) \
            else None
        target = named.url if named and named.url else url
        with Progress(transient=True, console=out) as bar:
            tasks = {d: bar.add_task(f"{d}ing", total=None) for d in ("pull", "push")}

            def progress(direction: str, done: int, total: int) -> None:
                bar.update(tasks[direction], completed=done, total=total)

            report = mem.sync_peer(target, key, push=not pull_only, pull=not push_only,
                                   batch=batch, user=user, progress=progress)
        got, sent = state_peer.exchange(open_states(data, state_dir), mem.store, target, key,
                                        push=not pull_only, pull=not push_only, user=user) \
            if states else (None, None)
    if as_json:
        emit_json(report.to_dict() | ({"states": {
            "received": got.to_dict() if got else None,
            "sent": sent.to_dict() if sent else None}} if states else {}))
        return
    out.print(f"{report.peer} ({report.url}): received {report.pulled_new} new events "
              f"({report.pulled} sent), sent {report.pushed_new} new ({report.pushed}) in "
              f"{report.batches} batches, {report.seconds:.2f} s", highlight=False)
    if states:
        out.print(f"saved states: received {len(got.sessions) if got else 0} sessions "
                  f"({got.chunks if got else 0} chunks), sent {len(sent.sessions) if sent else 0}"
                  f" ({sent.chunks if sent else 0} chunks)", highlight=False)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "never"
