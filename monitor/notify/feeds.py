"""RSS 2.0 and Atom files, one pair per topic and one for all topics, written atomically.

    write_feeds({None: [...], "Human rights": [...]}, state/feeds, base_url, now)
      → state/feeds/all.xml, all.atom, human-rights.xml, human-rights.atom

Each item links the original article, has the article URL as its guid (isPermaLink) and Atom
id, one category per topic, the published date (else the date press-monitor found it), and
the highlighted snippet as HTML. A reader polling a file mid-write sees the old file or the
new one, never half of one (temp file in the same directory, fsync, os.replace).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from monitor.errors import MonitorError
from monitor.log import event
from monitor.models import DigestEntry

log = logging.getLogger(__name__)

#: Items per feed file; readers keep what they have already seen.
MAX_ITEMS = 100

_NON_ALNUM = re.compile(r"[\W_]+")
# Characters XML 1.0 cannot carry at all (lxml refuses them): C0 controls but tab, CR, LF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def topic_slug(topic: str) -> str:
    """The topic as a file name: "Human rights" → "human-rights", "Média" → "media".

    Lower-cased; accents on Latin letters folded (NFKD, combining marks dropped); other
    scripts keep their letters whole, so "й" stays "й" rather than becoming "и"; every run of
    characters that are not letters or digits becomes "-". A topic with no letter or digit
    at all is "topic".
    """
    folded = "".join(_fold_latin(unicodedata.normalize("NFKD", topic)))
    slug = _NON_ALNUM.sub("-", unicodedata.normalize("NFC", folded).lower()).strip("-")
    return slug or "topic"


def _fold_latin(decomposed: str) -> Iterable[str]:
    """Drop combining marks that follow a Latin letter; keep those of other scripts."""
    base_is_latin = False
    for char in decomposed:
        if unicodedata.combining(char):
            if not base_is_latin:
                yield char
            continue
        base_is_latin = unicodedata.name(char, "").startswith("LATIN")
        yield char


def write_feeds(
    feeds: dict[str | None, list[DigestEntry]], feeds_dir: Path, base_url: str, now: datetime
) -> list[Path]:
    """Write ``<slug>.xml`` (RSS 2.0) and ``<slug>.atom`` per key; None is "all" topics.

    Entries are taken as given (newest first), at most MAX_ITEMS per feed. Two topics that
    would share a file name: the first keeps it, the other is skipped with a warning.
    Returns the paths written.
    """
    feeds_dir = Path(feeds_dir)
    base_url = base_url.rstrip("/")
    try:
        feeds_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MonitorError(str(feeds_dir), "cannot create the feeds directory") from exc
    written: list[Path] = []
    owners: dict[str, str | None] = {}
    for topic in sorted(feeds, key=lambda t: (t is not None, t or "")):
        slug = "all" if topic is None else topic_slug(topic)
        if slug in owners:
            kept = owners[slug] or "all topics"
            event(log, "feeds.slug_taken", logging.WARNING, topic=topic, slug=slug, kept=kept)
            continue
        owners[slug] = topic
        generator = _feed(topic, slug, feeds[topic][:MAX_ITEMS], base_url, now)
        rss_path, atom_path = feeds_dir / f"{slug}.xml", feeds_dir / f"{slug}.atom"
        _links(generator, base_url, f"{base_url}/feeds/{rss_path.name}")
        _write_atomically(rss_path, generator.rss_str(pretty=True))
        _links(generator, base_url, f"{base_url}/feeds/{atom_path.name}")
        _write_atomically(atom_path, generator.atom_str(pretty=True))
        written += [rss_path, atom_path]
    return written


def entry_html(entry: DigestEntry) -> str:
    """An item's description: the highlighted snippet, the source, the teaser note."""
    from monitor.notify.snippet import make_snippet

    snippet = make_snippet(entry)
    parts = [Markup("<p>{}</p>").format(snippet.html)] if snippet.pieces else []
    credit = entry.source + (
        f" (also published by {', '.join(entry.also_published_by)})"
        if entry.also_published_by
        else ""
    )
    if credit:
        parts.append(Markup("<p>{}</p>").format(credit))
    if snippet.teaser_only:
        parts.append(Markup("<p><em>{}</em></p>").format(snippet.note))
    if entry.why:
        parts.append(Markup("<p>Matched: {}</p>").format("; ".join(entry.why)))
    return str(Markup("").join(parts)) or str(escape(entry.url))


def _xml_text(text: str) -> str:
    """``text`` without the characters XML cannot carry (lxml would refuse the document)."""
    return _NOT_XML.sub("", text)


def _title(text: str) -> str:
    """A one-line title: every run of whitespace (line breaks too) as one space."""
    return " ".join(_xml_text(text).split())


def _feed(
    topic: str | None, slug: str, entries: list[DigestEntry], base_url: str, now: datetime
) -> Any:
    from feedgen.feed import FeedGenerator

    generator = FeedGenerator()
    title = f"Press Monitor: {topic}" if topic is not None else "Press Monitor: all topics"
    generator.title(_title(title))
    generator.id(f"{base_url}/feeds/{slug}.xml")
    generator.description(
        _xml_text(f"New articles on {topic}" if topic else "New articles on every topic")
    )
    generator.generator("press-monitor")
    generator.lastBuildDate(now)
    generator.updated(now)
    for entry in entries:
        _add_entry(generator, entry)
    return generator


def _add_entry(generator: Any, entry: DigestEntry) -> None:
    item = generator.add_entry(order="append")
    url = _xml_text(entry.url)
    item.id(url)
    item.guid(url, permalink=True)
    item.title(_title(entry.title) or url)
    item.link(href=url, rel="alternate")
    when = entry.published or entry.found
    item.published(when)
    item.updated(when)
    for topic in entry.topics:
        item.category(term=_title(topic), label=_title(topic))
    item.summary(_xml_text(entry_html(entry)), type="html")


def _links(generator: Any, base_url: str, self_href: str) -> None:
    """The feed's links: the site (alternate) and the file itself (atom:link rel=self)."""
    # feedgen takes the RSS <link> from the last link given: the site, not the file.
    links = [{"href": self_href, "rel": "self"}, {"href": base_url, "rel": "alternate"}]
    generator.link(links, replace=True)


def _write_atomically(path: Path, data: bytes) -> None:
    handle = tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    )
    try:
        with handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes 0600; a feed is public, and a web server may serve the directory.
        os.chmod(handle.name, 0o644)
        os.replace(handle.name, path)
    except OSError as exc:
        Path(handle.name).unlink(missing_ok=True)
        raise MonitorError(str(path), "cannot write the feed file") from exc
