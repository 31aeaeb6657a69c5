"""The dashboard's analytics and session replay pages, in a real headless Chromium (Debian's
`chromium`, driven by Playwright): tested by what they show (drawn chart paths, the hit rate,
the timeline's rows), not by pixels."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from chromium import chromium_page, needs_chromium
from engram import ManualClock
from engram.memory import Memory
from engram.server.app import create_app
from engram.server.background import serving
from engram.server.service import ServerConfig


def populate(mem: Memory, clock: ManualClock) -> None:
    """A week of turns in one session a day; contexts asked; maintenance every day."""
    for day in range(7):
        mem.remember_turn(f"I went hiking in Sintra on day {day}.", "Lovely!",
                          user_id="ana", session_id=f"s{day}", speaker="Ana")
        mem.remember_turn(f"My favourite tea is green tea, number {day}.", user_id="ana",
                          session_id=f"s{day}", speaker="Ana")
        mem.maintain()
        clock.advance(timedelta(days=1))


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[str]:
    clock = ManualClock(datetime(2026, 3, 1, 9, tzinfo=UTC))
    mem = Memory(tmp_path / "store", clock=clock, embedder=None)
    populate(mem, clock)
    app = create_app(ServerConfig(data=tmp_path / "store"), mem)
    with serving(app) as url:
        for budget in (60, 300, 1200):
            httpx.post(f"{url}/context", json={"query": "hiking and tea", "user_id": "ana",
                                               "budget_tokens": budget})
        yield url


def test_pages_render_without_the_internet(dashboard: str) -> None:
    html = httpx.get(f"{dashboard}/dashboard/analytics").text
    for part in ('id="tier-flow"', 'id="transition-flow"', 'id="hit-rate"', 'id="compression"'):
        assert part in html
    assert "https://" not in html and "http://" not in html.replace(dashboard, "")
    assert httpx.get(f"{dashboard}/dashboard/sessions/s9?user=ana").status_code == 404


@needs_chromium
def test_analytics_and_replay_in_chromium(dashboard: str) -> None:
    with chromium_page(viewport={"width": 1280, "height": 1100}) as (page, failed):
        page.goto(f"{dashboard}/dashboard")
        page.click("text=Analytics")
        page.wait_for_selector("#tier-flow")
        tiers = page.locator("#tier-flow path")
        assert tiers.count() >= 2  # short-term and long-term bands
        assert all(len(tiers.nth(i).get_attribute("d") or "") > 20 for i in range(tiers.count()))
        box = page.locator("#tier-flow").bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 80
        moves = page.locator("#transition-flow path")
        assert moves.count() >= 2 and "M" in (moves.first.get_attribute("d") or "")
        assert page.locator("#hit-rate").inner_text().endswith("%")
        page.click("#sessions a.session-link >> text=s6")
        page.wait_for_selector("#timeline")
        assert "hiking in Sintra on day 6" in page.locator("#timeline").inner_text()
        page.go_back()
        page.fill("#analytics-user", "nobody")
        page.click("text=Show")
        page.wait_for_selector("#tier-flow")
        assert page.locator("#tier-flow path").count() == 0
        page.goto(f"{dashboard}/dashboard/sessions/s2?user=ana")
        rows = page.locator("#timeline tr.step")
        assert rows.count() >= 4 and page.locator("#turns").inner_text() == "2"
        assert "hiking in Sintra on day 2" in page.locator("#timeline").inner_text()
        assert page.locator("#timeline tr.extracted").count() >= 1
        page.goto(f"{dashboard}/dashboard/sessions/nope?user=ana")
        assert "nope" in page.locator("#replay-error").inner_text()
        assert failed == []
