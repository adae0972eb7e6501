"""A digest's HTML rendered in Debian's chromium on a phone-sized viewport, screenshot kept."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor import notify
from monitor.config import load
from monitor.models import DigestEntry, Subscriber

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
TEXT = (
    "The court in Almaty sentenced the journalist to five years. Human rights groups said the "
    "verdict was a blow to media freedom in Kazakhstan, and the EU Delegation asked for a review."
)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_digest_html_fits_a_phone_screen_with_visible_highlights(
    project: Path, browser: Any, tmp_path: Path
) -> None:
    config = load(project / "monitor.toml")
    start = TEXT.index("Human rights")
    entry = DigestEntry(
        article_id=1,
        url="https://news.example.org/court",
        title="Court sentences journalist in Almaty; rights groups protest a verdict " * 2,
        source="EU Delegation to Kazakhstan",
        published=NOW,
        found=NOW,
        topics=("Human rights", "Media freedom"),
        text=TEXT,
        spans=(("text", start, start + len("Human rights")),),
    )
    subscriber = Subscriber(email="reader@example.org", digest="daily")
    templates = notify.load_templates(config.monitor.templates_dir)
    message = notify.compose_digest(templates, config, config.digests[0], subscriber, [entry], NOW)
    html = message.get_body(("html",))
    assert html is not None

    page = browser.new_page(viewport={"width": 375, "height": 740}, device_scale_factor=1)
    page.set_content(html.get_content())
    shot = tmp_path / "digest-phone.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 5000

    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], "the digest scrolls sideways on a phone"
    mark = page.locator("mark").first
    assert mark.inner_text() == "Human rights"
    box = mark.bounding_box()
    assert box is not None
    assert box["width"] > 20
    assert box["x"] + box["width"] <= 375
    background = page.evaluate("getComputedStyle(document.querySelector('mark')).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "transparent", "rgb(255, 255, 255)")
    title = page.locator("a", has_text="Court sentences journalist").first.bounding_box()
    assert title is not None
    assert title["width"] <= 375
    page.close()
