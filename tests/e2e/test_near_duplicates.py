"""Near-duplicates end to end: the same press release republished by another site, lightly
edited, is stored once with its matches and shown with "also published by" (issue #5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.config import load as load_config
from monitor.store import open_store
from tests.servers import LocalSite

pytestmark = pytest.mark.timeout(90)

RELEASE = [
    "Astana, 19 November 2026. The European Union and Kazakhstan held their annual human"
    " rights dialogue in Astana this week.",
    "The EU delegation raised the cases of political prisoners and of journalists held in"
    " pre-trial detention for their reporting.",
    "It asked the authorities to open independent investigations into every allegation of"
    " torture in places of detention.",
    "Both sides discussed the new law on peaceful assemblies and the registration of"
    " non-governmental organisations working on civic education.",
    "The EU welcomed the abolition of the death penalty and encouraged the ratification of"
    " the remaining international instruments on the subject.",
    "The next round of the dialogue will take place in Brussels in the autumn of next year,"
    " preceded by a seminar with civil society from both regions.",
]
EDITED = [
    "Brussels and Astana — the annual human rights dialogue took place this week.",
    *RELEASE[1:3],
    *RELEASE[4:],  # a sentence dropped
]
UNRELATED = [
    "The Ministry of Justice of Kazakhstan presented its annual report on human rights"
    " education in schools to the parliament on Tuesday.",
    "Teachers from twelve regions described the courses they give on the constitution,"
    " on the rights of children and on how to file a complaint with the ombudsman.",
    "Deputies asked for more hours in the curriculum and for textbooks in Kazakh, Russian"
    " and English, and for training for teachers in rural districts.",
    "The report will be published on the ministry's website together with the statistics"
    " collected by the regional education departments over the past year.",
]


def page(title: str, paragraphs: list[str]) -> str:
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"/><title>{title}</title>'
        f"</head><body><main><article><h1>{title}</h1>\n{body}\n</article></main></body></html>"
    )


def feed(name: str, items: list[tuple[str, str]]) -> str:
    entries = "".join(
        f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid></item>"
        for title, link in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{name}</title><link>/</link><description>{name}</description>"
        f"{entries}</channel></rss>"
    )


def test_republished_release_is_one_entry_also_published_by_and_counted_once(
    project: Path, site: LocalSite, capsys: pytest.CaptureFixture[str]
) -> None:
    root = site.root
    (root / "a").mkdir()
    (root / "b").mkdir()
    (root / "a/release.html").write_text(
        page("EU and Kazakhstan hold human rights dialogue", RELEASE), encoding="utf-8"
    )
    (root / "b/repost.html").write_text(
        page("Human rights dialogue held in Astana", EDITED), encoding="utf-8"
    )
    (root / "b/schools.html").write_text(
        page("Human rights education in schools reported", UNRELATED), encoding="utf-8"
    )
    (root / "a/rss.xml").write_text(
        feed("Agency A", [("EU and Kazakhstan hold human rights dialogue", "/a/release.html")]),
        encoding="utf-8",
    )
    (root / "b/rss.xml").write_text(
        feed(
            "Agency B",
            [
                ("Human rights dialogue held in Astana", "/b/repost.html"),
                ("Human rights education in schools reported", "/b/schools.html"),
            ],
        ),
        encoding="utf-8",
    )
    config_path = project / "monitor.toml"
    config_path.write_text(
        f"""
[monitor]
timezone = "Asia/Almaty"
max_age = "0"
timeout = 5

[[source]]
name = "Agency A"
url = "{site.url("a/rss.xml")}"
kind = "feed"

[[source]]
name = "Agency B"
url = "{site.url("b/rss.xml")}"
kind = "feed"
""",
        encoding="utf-8",
    )

    status = main(["--config", str(config_path), "poll", "--once", "--json"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    assert status == 0
    assert summary["sources_ok"] == 2
    # Three articles, but the repost's matches are not counted again: two on Human rights.
    assert summary["topics"]["Human rights"] == 2
    store = open_store(load_config(config_path).monitor.db_path)
    try:
        entries = store.recent_entries("Human rights")
    finally:
        store.close()
    by_url = {entry.url: entry for entry in entries}
    assert len(entries) == 2
    release = by_url.get(site.url("a/release.html")) or by_url[site.url("b/repost.html")]
    other = "Agency B" if release.source == "Agency A" else "Agency A"
    assert release.also_published_by == (other,)
    schools = by_url[site.url("b/schools.html")]
    assert schools.also_published_by == ()


def test_an_amp_or_slash_variant_of_a_stored_article_is_known_and_not_fetched(
    project: Path, site: LocalSite, capsys: pytest.CaptureFixture[str]
) -> None:
    root = site.root
    (root / "a").mkdir()
    (root / "a/release.html").write_text(
        page("EU and Kazakhstan hold human rights dialogue", RELEASE), encoding="utf-8"
    )
    (root / "a/rss.xml").write_text(
        feed("Agency A", [("EU and Kazakhstan hold human rights dialogue", "/a/release.html")]),
        encoding="utf-8",
    )
    (root / "b.xml").write_text(
        feed(
            "Aggregator",
            [
                ("Human rights dialogue (AMP)", "/a/release.html/amp/"),
                ("Human rights dialogue (tracked)", "/a/release.html?utm_source=x#top"),
            ],
        ),
        encoding="utf-8",
    )
    config_path = project / "monitor.toml"
    first = f"""
[monitor]
timezone = "Asia/Almaty"
max_age = "0"
timeout = 5

[[source]]
name = "Agency A"
url = "{site.url("a/rss.xml")}"
kind = "feed"
"""
    config_path.write_text(first, encoding="utf-8")
    assert main(["--config", str(config_path), "poll", "--once", "--json"]) == 0
    capsys.readouterr()
    config_path.write_text(
        first + f'\n[[source]]\nname = "Aggregator"\nurl = "{site.url("b.xml")}"\nkind = "feed"\n',
        encoding="utf-8",
    )

    assert main(["--config", str(config_path), "poll", "--once", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    assert site.hits("a/release.html/amp/") == []
    assert len(site.hits("a/release.html")) == 1
    assert summary["new_items"] == 2
    assert summary["new_articles"] == 0
    assert summary["matches"] == 0
    store = open_store(load_config(config_path).monitor.db_path)
    try:
        entries = store.recent_entries(None)
    finally:
        store.close()
    assert [entry.url for entry in entries] == [site.url("a/release.html")]
