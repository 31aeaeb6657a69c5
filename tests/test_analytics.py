"""Memory analytics: the metrics fold (tiers, types, statuses, moves per day), per user,
utilisation and recall hit rate from recorded contexts, compaction, `engram stats --json` and
`--parquet`, and the stacked charts' geometry."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from engram import ManualClock, Memory
from engram.analytics.metrics import compaction, measure
from engram.cli.main import app
from engram.lifecycle.tiers import Policy
from engram.server import flow_charts
from engram.server.charts import HEIGHT, PAD
from engram.server.usage import ContextUsage, Sample

runner = CliRunner()


def history(directory: Path) -> None:
    """Three days: ana's memories are promoted, superseded and expire; bob adds one."""
    clock = ManualClock(datetime(2026, 3, 1, 9, tzinfo=UTC))
    with Memory(directory, clock=clock, embedder=None) as mem:
        kept = mem.remember_turn("I live in Lisbon.", user_id="ana", session_id="s0").extracted[0]
        mem.add("I'm tired today", user_id="ana", memory_type="context")
        mem.add("Bob likes chess", user_id="bob")
        clock.advance(timedelta(days=1))
        mem.set_tier(kept.id, "long_term", "confirmed")
        mem.remember_turn("I live in Porto now.", user_id="ana", session_id="s1")
        clock.advance(timedelta(days=4))
        mem.maintain()


def test_metrics_follow_tiers_statuses_and_moves_by_day(tmp_path: Path) -> None:
    history(tmp_path)
    with Memory(tmp_path, embedder=None) as mem:
        everyone, ana = measure(mem.store), measure(mem.store, "ana")
    assert everyone.days == ["2026-03-01", "2026-03-02", "2026-03-06"]
    assert everyone.tiers["short_term"][0] == 4 and ana.tiers["short_term"][0] == 3
    assert ana.promotions == {"2026-03-02": 1, "2026-03-06": 1}
    assert ana.expiries == {"2026-03-06": 3}
    assert ana.transitions["long_term→superseded"] == {"2026-03-02": 1}  # Porto replaced it
    assert ana.transitions["new→short_term"] == {"2026-03-01": 3, "2026-03-02": 2}
    assert ana.statuses == {"active": [3, 4, 1], "expired": [0, 0, 3],
                            "superseded": [0, 1, 1]}
    assert sum(v[0] for v in everyone.statuses.values()) == 4
    assert "bob" not in json.dumps(ana.to_dict())


def test_utilisation_and_recall_hit_rate_come_from_recorded_contexts(tmp_path: Path) -> None:
    with Memory(tmp_path, embedder=None) as mem:
        usage = ContextUsage(mem.store)
        usage.record(Sample("2026-03-01T09:00:00Z", "ana", 1000, 600, 3, "context", 4))
        usage.record(Sample("2026-03-01T10:00:00Z", "ana", 1000, 200, 1, "context", 4))
        usage.record(Sample("2026-03-01T10:00:00Z", "bob", 500, 500, 2, "mcp", 2))
        usage.flush()
        ana, everyone = measure(mem.store, "ana"), measure(mem.store)
    assert ana.utilisation["share"] == 0.4 and ana.recall_hit_rate == 0.5
    assert everyone.utilisation["contexts"] == 3 and everyone.recall_hit_rate == 0.6


def test_compaction_ratio_counts_summaries_and_loose_memories(tmp_path: Path) -> None:
    with Memory(tmp_path, policy=Policy(compact_distance=0.65)) as mem:
        for text in ("I adopted a puppy named Oscar in May",
                     "Oscar the puppy loves chasing tennis balls",
                     "My dog Oscar had his vaccinations on 3 June",
                     "We walk Oscar in the dog park on Sundays",
                     "Paris is the capital of France"):
            mem.add(text, user_id="ana")
        assert compaction(mem.store, "ana")["ratio"] == 1.0
        mem.compact("ana")
        found = compaction(mem.store, "ana")
    assert found["concepts"] == 1 and found["members"] == 4 and found["memories"] == 5
    assert found["ratio"] > 1.0 and found["compacted_tokens"] < found["tokens"]


def test_stats_json_and_parquet(tmp_path: Path) -> None:
    history(tmp_path / "store")
    out = tmp_path / "metrics.parquet"
    shown = runner.invoke(app, ["stats", "--json", "--data", str(tmp_path / "store"),
                                "--parquet", str(out)])
    assert shown.exit_code == 0, shown.output
    stats = json.loads(shown.stdout)
    for key in ("tiers", "types", "statuses", "promotions", "expiries", "transitions",
                "utilisation", "recall_hit_rate", "compaction", "memories"):
        assert key in stats
    table = pq.read_table(out).to_pylist()
    assert {"tier", "type", "status", "promotions", "transition", "compaction"} <= \
        {r["metric"] for r in table}
    assert {"metric": "tier", "day": "2026-03-01", "series": "short_term", "value": 4.0} \
        in table
    ana = runner.invoke(app, ["stats", "--data", str(tmp_path / "store"), "--user", "ana"],
                        env={"COLUMNS": "200"})
    assert ana.exit_code == 0 and "recall hit rate" in ana.output


def test_stacked_areas_stack_to_the_daily_totals() -> None:
    bands, top = flow_charts.stacked_areas({"short_term": [2, 1, 0], "long_term": [0, 1, 3]})
    assert top == 3 and [b.total for b in bands] == [0, 3]
    upper = bands[-1].d[1:].split(" L")[:3]  # the top band's upper edge: the totals
    assert [float(p.split(",")[1]) for p in upper][-1] == PAD  # 3 of 3 at the top
    assert float(upper[0].split(",")[1]) < HEIGHT - PAD
    bars, top = flow_charts.stacked_bars(["d1", "d2"], {"a→b": {"d1": 2}, "b→c": {"d1": 1,
                                                                              "d2": 1}})
    assert top == 3 and [b.name for b in bars] == ["a→b", "b→c"]
    assert bars[1].d.count("M") == 2
