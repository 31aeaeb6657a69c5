"""How tests/data/store_v0_1 was written: run once with Engram 0.1.0 (commit 5f5cc32), as
`PYTHONPATH=<0.1.0>/src python tests/data/make_store_v0_1.py tests/data/store_v0_1`.

Kept as the record of that fixture, not run by the suite (it speaks 0.1.0's API)."""
import json, sys, shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from engram import Memory
from engram.clock import ManualClock

out = Path(sys.argv[1]); shutil.rmtree(out, ignore_errors=True)
clock = ManualClock(datetime(2026, 11, 1, 9, 0, tzinfo=UTC))
mem = Memory(out, clock=clock, device_id="dev-laptop0001", embedder=None, access_batch=1)
a = mem.add("Caroline adopted a puppy named Oscar", user_id="u1", session_id="s1", tags=["pets"])
clock.advance(timedelta(minutes=1))
b = mem.add("Melanie paints sunsets by the lake", user_id="u1", session_id="s1")
clock.advance(timedelta(minutes=1))
mem.add("Caroline adopted a puppy named Oscar", user_id="u1")  # corroborates a
c = mem.add("Bob's favourite band is Radiohead", user_id="u2")
done = mem.remember_turn("I moved to Paris last year.", "Nice!", user_id="u1", session_id="s2")
clock.advance(timedelta(hours=2))
done2 = mem.remember_turn("I moved to Berlin last month.", "Congrats!", user_id="u1", session_id="s3")
mem.tag(b.id, add=["art"])
mem.link(b.id, "related", a.id)
mem.update(b.id, text="Melanie paints sunsets and lakes")
mem.feedback(a.id, "good")
mem.set_tier(c.id, "long_term", "user said so")
secret = mem.add("my bank PIN is 4321", user_id="u1")
mem.forget(secret.id)
mem.search("puppy", user_id="u1")
mem.flush()
clock.advance(timedelta(days=5))
mem.maintain()
mem.store.set_setting("chat.summary.s3", json.dumps({"turns": 1, "text": "moved"}))
queries = ["puppy", "paints sunsets", "where do I live", "Radiohead", "Berlin", "PIN"]
expected = {}
for q in queries:
    for user in ("u1", "u2"):
        expected[f"{user}:{q}"] = [h.memory.id for h in mem.search(q, user_id=user)]
expected_list = {u: sorted(m.id for m in mem.list(user_id=u, status="all")) for u in ("u1", "u2")}
report = mem.verify()
assert report.ok, report
events = len(list(mem.events()))
mem.close()
(out.parent / "store_v0_1.json").write_text(json.dumps({
    "made_by": "engram-memory 0.1.0 (commit 5f5cc32), see tests/test_store_upgrade.py",
    "forgotten_text": "my bank PIN is 4321", "forgotten_id": secret.id,
    "events": events, "searches": expected, "memories": expected_list,
    "setting.chat.summary.s3": {"turns": 1, "text": "moved"}}, indent=1, sort_keys=True) + "\n")
print(events, expected)
