"""The dashboard: the event-log fold behind it (pure), and the page itself in a real headless
Chromium (Debian's `chromium`, driven by Playwright through its executable path), clicking
search → memory → history. Set ENGRAM_UPDATE_SCREENSHOT=1 to refresh docs/dashboard.png."""

from __future__ import annotations

import math
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from chromium import chromium_page, needs_chromium
from engram import ManualClock
from engram.memory import Memory
from engram.server import charts
from engram.server.app import create_app
from engram.server.background import serving
from engram.server.insights import gather
from engram.server.keys import KeyRing
from engram.server.service import ServerConfig

SCREENSHOT = Path(__file__).parent.parent / "docs" / "dashboard.png"
WEEK = [
    ("I moved to Lisbon", "fact"), ("I prefer green tea in the morning", "preference"),
    ("I can play the cello", "skill"), ("I went hiking in Sintra", "event"),
    ("I'm tired today", "context"), ("My sister Ana lives in Porto", "fact"),
    ("I think remote work is better", "belief"),
]


def populate(mem: Memory, clock: ManualClock, days: int = 10) -> None:
    """A few memories a day for `days` days, recalled and maintained as a user would."""
    for day in range(days):
        for i, (text, kind) in enumerate(WEEK[: 2 + day % 4]):
            mem.add(f"{text} (day {day}, note {i})", user_id="ana", memory_type=kind,
                    confidence=0.9 if kind in ("fact", "preference") else 0.5)
        for query in ("tea", "Lisbon", "sister"):
            mem.search(query, user_id="ana", limit=3)
        mem.flush()
        mem.maintain()
        clock.advance(timedelta(days=1))


def test_gather_counts_tiers_moves_and_recalls(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 3, 1, 9, tzinfo=UTC))
    with Memory(tmp_path, clock=clock, embedder=None) as mem:
        first = mem.add("I live in Lisbon", user_id="ana")
        tired = mem.add("I'm tired today", user_id="ana", memory_type="context")
        gone = mem.add("My bank PIN is 4711", user_id="ana")
        clock.advance(timedelta(days=1))
        mem.set_tier(first.id, "long_term", "test")
        mem.search("Lisbon", user_id="ana")
        mem.flush()
        mem.forget(gone.id)
        clock.advance(timedelta(days=4))
        mem.maintain()  # the unconfirmed, unused context expires
        found = gather(mem.events())
    assert found.days == ["2026-03-01", "2026-03-02", "2026-03-06"]
    assert found.by_tier == {"short_term": [2, 1, 0], "long_term": [0, 1, 1]}
    assert found.by_type == {"context": [1, 1, 0], "fact": [1, 1, 1]}
    assert found.promotions == {"2026-03-02": 1}
    assert found.expiries == {"2026-03-06": 1}
    assert found.transitions[("new", "short_term")] == 2  # the forgotten one left no trace
    assert found.transitions[("short_term", "long_term")] == 1
    assert found.transitions[("short_term", "expired")] == 1
    assert found.recalls == {first.id: 1} and tired.id not in found.recalls


def test_charts_scale_to_the_largest_value() -> None:
    drawn, top = charts.lines({"short_term": [0, 5, 10], "long_term": [0, 0, 2]})
    assert top == 10 and drawn[0].last == 10
    ys = [float(p.split(",")[1]) for p in drawn[0].points.split()]
    assert ys[0] == charts.HEIGHT - charts.PAD and ys[-1] == charts.PAD
    edges = charts.transitions(Counter({("short_term", "long_term"): 9,
                                        ("short_term", "nowhere"): 1}))
    assert [e.count for e in edges] == [9]


def test_one_day_draws_a_line_across() -> None:
    """Right after `engram demo` every event falls on one day: the chart still draws."""
    drawn, _ = charts.lines({"short_term": [50]})
    points = [tuple(map(float, p.split(","))) for p in drawn[0].points.split()]
    assert len(points) == 2 and points[0][0] == charts.PAD
    assert points[1][0] == charts.WIDTH - charts.PAD and points[0][1] == points[1][1]


def test_transition_counts_stay_clear_of_the_arrowheads() -> None:
    counts = Counter({("new", "short_term"): 52, ("short_term", "long_term"): 3,
                      ("short_term", "expired"): 4, ("long_term", "persistent"): 1,
                      ("short_term", "superseded"): 2})
    for e in charts.transitions(counts):
        length = math.hypot(e.x2 - e.x1, e.y2 - e.y1)
        ux, uy = (e.x2 - e.x1) / length, (e.y2 - e.y1) / length
        along = (e.label_x - e.x1) * ux + (e.label_y - e.y1) * uy
        across = abs((e.label_x - e.x1) * uy - (e.label_y - e.y1) * ux)
        assert along < length - charts.ARROW - 6  # before the arrowhead begins
        assert across > e.width / 2 + 3  # beside the line, not on it


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[str, str]]:
    clock = ManualClock(datetime(2026, 3, 1, 9, tzinfo=UTC))
    mem = Memory(tmp_path / "store", clock=clock, embedder=None)
    populate(mem, clock)
    app = create_app(ServerConfig(data=tmp_path / "store"), mem)
    target = mem.list(user_id="ana", limit=None)[-1].id
    with serving(app) as url:
        for budget in (300, 600, 1200):
            httpx.post(f"{url}/context", json={"query": "green tea in Lisbon",
                                               "user_id": "ana", "budget_tokens": budget})
        yield url, target


def test_overview_renders_without_the_internet(dashboard: tuple[str, str]) -> None:
    url, _ = dashboard
    page = httpx.get(f"{url}/dashboard")
    assert page.status_code == 200
    html = page.text
    for part in ('id="tiers-chart"', 'id="types-chart"', 'id="moves-chart"',
                 'id="transitions"', 'id="usage-chart"', 'id="most-recalled"'):
        assert part in html
    assert "http://" not in html.replace(url, "") and "https://" not in html
    assert '<span id="utilisation">' in html


@needs_chromium
def test_search_memory_history_in_chromium(dashboard: tuple[str, str],
                                           tmp_path: Path) -> None:
    url, _ = dashboard
    with chromium_page(viewport={"width": 1280, "height": 1300}) as (page, failed):
        page.goto(f"{url}/dashboard")
        assert page.locator("#tiers-chart polyline").count() >= 2
        assert page.locator("#transitions line").count() >= 2
        assert int(page.locator("#promoted").inner_text()) > 0
        shot = tmp_path / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)

        page.fill("input[name=user]", "ana")
        page.fill("input[name=q]", "green tea")
        page.click("#search-button")
        page.wait_for_selector("#results a.memory-link")
        first = page.locator("#results a.memory-link").first
        assert "green tea" in first.inner_text()
        first.click()
        page.wait_for_selector("#history")
        assert "green tea" in page.locator("#memory-text").inner_text()
        kinds = page.locator("#history tr.event td:nth-child(2)").all_inner_texts()
        assert kinds[0] == "memory.added"
        assert failed == []
    if os.environ.get("ENGRAM_UPDATE_SCREENSHOT"):
        shutil.copyfile(shot, SCREENSHOT)


def test_sign_in_keeps_an_admin_key_in_a_cookie(tmp_path: Path) -> None:
    mem = Memory(tmp_path / "store", embedder=None)
    ring = KeyRing(mem.store)
    admin = ring.create("ops", "read,admin", now=mem.clock.now())[0]
    plain = ring.create("alice", "read,write", now=mem.clock.now())[0]
    with serving(create_app(ServerConfig(data=tmp_path / "store"), mem)) as url, \
            httpx.Client(base_url=url) as browser:
        assert browser.get("/dashboard").headers["location"] == "/dashboard/login"
        assert browser.post("/dashboard/login", data={"key": admin}).status_code == 403
        csrf = browser.get("/dashboard/login").cookies["engram_csrf"]  # no form, no token
        refused = browser.post("/dashboard/login", data={"key": plain, "csrf_token": csrf})
        assert refused.status_code == 401 and "admin" in refused.text
        assert browser.get("/dashboard", headers={"Authorization": f"Bearer {plain}"}
                           ).status_code == 403
        signed = browser.post("/dashboard/login", data={"key": admin, "csrf_token": csrf})
        cookie = signed.headers["set-cookie"].lower()
        assert signed.status_code == 303 and "httponly" in cookie and "path=/dashboard" in cookie
        assert browser.get("/dashboard").status_code == 200  # the cookie does it now


@pytest.fixture
def one_day(tmp_path: Path) -> Iterator[str]:
    """A store as `engram demo` leaves it: everything on one day, two users, a memory with
    tags, metadata and a non-ASCII letter."""
    clock = ManualClock(datetime(2026, 3, 1, 9, tzinfo=UTC))
    mem = Memory(tmp_path / "store", clock=clock, embedder=None)
    mem.add("Jürgen prefers green tea", user_id="jurgen", memory_type="preference",
            tags=["drinks", "morning"], metadata={"source": "Café notes"})
    mem.add("Ana plays the cello", user_id="ana", memory_type="skill")
    with serving(create_app(ServerConfig(data=tmp_path / "store"), mem)) as url:
        yield url


@needs_chromium
def test_a_fresh_store_in_chromium(one_day: str) -> None:
    """What the page shows right after a demo: charts with lines, the header search finding
    any user's memory, fields and history as a person reads them."""
    with chromium_page() as (page, _):
        page.goto(f"{one_day}/dashboard")
        for chart in ("#tiers-chart", "#types-chart"):
            lines = page.locator(f"{chart} polyline")
            assert lines.count() >= 1
            box = lines.first.bounding_box()
            assert box is not None and box["width"] > 100  # drawn across, not a dot
        page.fill("input[name=q]", "green tea")  # no user named: every user's memories
        page.click("#search-button")
        page.wait_for_selector("#results a.memory-link")
        page.locator("#results a.memory-link").first.click()
        page.wait_for_selector("#history")
        assert page.locator(".field-tags").inner_text() == "drinks, morning"
        assert page.locator(".field-metadata").inner_text() == '{"source": "Café notes"}'
        assert "[" not in page.locator(".field-sources").inner_text()
        payload = page.locator("#history tr.event td code").first.inner_text()
        assert "Jürgen" in payload and "\\u00fc" not in payload


def test_a_key_without_admin_gets_a_page(tmp_path: Path) -> None:
    mem = Memory(tmp_path / "store", embedder=None)
    plain = KeyRing(mem.store).create("alice", "read,write", now=mem.clock.now())[0]
    with serving(create_app(ServerConfig(data=tmp_path / "store"), mem)) as url:
        for path in ("/dashboard", "/dashboard/memories"):
            page = httpx.get(url + path, headers={"Cookie": f"engram_key={plain}"})
            assert page.status_code == 403
            assert page.headers["content-type"].startswith("text/html")
            assert 'id="forbidden"' in page.text and "admin" in page.text
