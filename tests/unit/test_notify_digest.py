"""notify.compose_digest / compose_alert: the messages parsed back with the email package."""

from __future__ import annotations

import email
import email.policy
import shutil
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from monitor import notify
from monitor.config import Config, load
from monitor.errors import TemplateError
from monitor.models import DigestEntry, Subscriber
from monitor.notify import tokens
from monitor.notify.render import Templates

DATA = Path(__file__).parent.parent / "data" / "notify"
TEMPLATES = Path(__file__).parent.parent.parent / "templates"
ARTICLE = (DATA / "article.txt").read_text(encoding="utf-8")
NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # 08:00 in Almaty


def spans_of(text: str, *words: str) -> tuple[tuple[str, int, int], ...]:
    """("text", start, end) of the first occurrence of each word, as match/ reports them."""
    return tuple(("text", text.index(w), text.index(w) + len(w)) for w in words)


def entry(
    article_id: int,
    title: str,
    topics: tuple[str, ...],
    published: datetime | None = datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
    **kwargs: object,
) -> DigestEntry:
    values: dict[str, object] = {
        "article_id": article_id,
        "url": f"https://news.example.kz/2026/11/article-{article_id}.html",
        "title": title,
        "source": "Kursiv",
        "published": published,
        "found": datetime(2026, 11, 24, 1, 0, tzinfo=UTC),
        "topics": topics,
        "text": ARTICLE,
        "spans": spans_of(ARTICLE, "human rights", "elections"),
    }
    values.update(kwargs)
    return DigestEntry(**values)  # type: ignore[arg-type]  # test factory


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = tmp_path / "monitor.toml"
    path.write_text(
        '[monitor]\ntimezone = "Asia/Almaty"\n\n'
        '[web]\nbase_url = "https://monitor.example.org"\n\n'
        '[[digest]]\nname = "daily"\nat = "08:00"\n',
        encoding="utf-8",
    )
    return load(path)


@pytest.fixture
def smtp_config(tmp_path: Path) -> Config:
    path = tmp_path / "smtp.toml"
    path.write_text(
        '[monitor]\ntimezone = "Asia/Almaty"\n\n'
        '[smtp]\nhost = "smtp.example.org"\n'
        'sender = "Desk Monitor <alerts@news-desk.example.org>"\n',
        encoding="utf-8",
    )
    return load(path)


@pytest.fixture
def templates() -> Templates:
    return notify.load_templates(TEMPLATES)


def reparse(message: EmailMessage) -> EmailMessage:
    """The message as a recipient gets it: bytes on the wire, parsed back."""
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content()


def digest(
    templates: Templates,
    config: Config,
    entries: list[DigestEntry],
    subscriber: Subscriber | None = None,
) -> EmailMessage:
    subscriber = subscriber or Subscriber("desk@example.org", "daily")
    message = notify.compose_digest(
        templates, config, config.digest(None), subscriber, entries, NOW
    )
    return reparse(message)


def test_digest_is_multipart_alternative_with_text_then_html(
    templates: Templates, config: Config
) -> None:
    message = digest(templates, config, [entry(1, "EU dialogue", ("Human rights",))])

    assert message.get_content_type() == "multipart/alternative"
    kinds = [part.get_content_type() for part in message.iter_parts()]
    assert kinds == ["text/plain", "text/html"]


def test_digest_subject_counts_articles_per_topic_most_first(
    templates: Templates, config: Config
) -> None:
    entries = [
        entry(1, "Vote count disputed", ("Elections",)),
        entry(2, "EU dialogue", ("Human rights",)),
        entry(3, "Activists detained", ("Human rights",)),
    ]

    message = digest(templates, config, entries)

    assert message["Subject"] == "3 new articles: Human rights (2), Elections (1)"


def test_article_on_two_topics_is_listed_once_under_its_first_topic(
    templates: Templates, config: Config
) -> None:
    both = entry(1, "Observers invited to the elections", ("Elections", "Human rights"))
    entries = [both, entry(2, "EU dialogue", ("Human rights",))]

    text, html = parts(digest(templates, config, entries))

    soup = BeautifulSoup(html, "html.parser")
    assert [a["href"] for a in soup.find_all("a", href=both.url)] == [both.url]
    assert html.count(both.title) == 1
    assert text.count(both.url) == 1
    assert text.count(both.title) == 1
    # Listed under Human rights (two articles, so first), tagged with both of its topics.
    sections = [h2.get_text(" ", strip=True) for h2 in soup.find_all("h2")]
    assert sections[0].startswith("Human rights")
    assert len(sections) == 1
    block = soup.find("a", href=both.url).find_parent(class_="entry")
    assert {tag.get_text() for tag in block.find_all(class_="tag")} == {"Elections", "Human rights"}


def test_titles_link_to_the_original_article(templates: Templates, config: Config) -> None:
    entries = [entry(1, "EU dialogue", ("Human rights",)), entry(2, "Vote count", ("Elections",))]

    _, html = parts(digest(templates, config, entries))

    soup = BeautifulSoup(html, "html.parser")
    for item in entries:
        link = soup.find("a", string=item.title)
        assert link is not None
        assert link["href"] == item.url
    article_links = {a["href"] for a in soup.find_all("a") if "unsubscribe" not in a["href"]}
    assert article_links == {item.url for item in entries}


def test_matched_words_are_marked_in_html_and_plain_in_text(
    templates: Templates, config: Config
) -> None:
    text, html = parts(digest(templates, config, [entry(1, "EU dialogue", ("Human rights",))]))

    marks = [m.get_text() for m in BeautifulSoup(html, "html.parser").find_all("mark")]
    assert marks == ["human rights", "elections"]
    assert "<mark" not in text
    assert "human rights" in text


def test_markup_in_article_text_is_escaped_around_the_marks(
    templates: Templates, config: Config
) -> None:
    text = "Officials <b>denied</b> that human rights lawyers were barred & detained."
    item = entry(
        1, "A <script>", ("Human rights",), text=text, spans=spans_of(text, "human rights")
    )

    _, html = parts(digest(templates, config, [item]))

    assert "&lt;b&gt;denied&lt;/b&gt;" in html
    assert "A &lt;script&gt;" in html
    assert "<script>" not in html


def test_also_published_by_names_the_other_sources(templates: Templates, config: Config) -> None:
    item = entry(1, "EU dialogue", ("Human rights",), also_published_by=("Vlast.kz", "Azattyq"))

    text, html = parts(digest(templates, config, [item]))

    assert "Also published by Vlast.kz, Azattyq" in text
    assert "Also published by Vlast.kz, Azattyq" in BeautifulSoup(html, "html.parser").get_text()


def test_unknown_publication_date_reads_date_unknown(templates: Templates, config: Config) -> None:
    text, html = parts(
        digest(templates, config, [entry(1, "EU dialogue", ("Human rights",), published=None)])
    )

    assert "date unknown" in text
    assert "date unknown" in html


def test_dates_are_shown_in_the_configured_timezone(templates: Templates, config: Config) -> None:
    published = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)  # 03:30 the next day in Almaty

    text, html = parts(
        digest(templates, config, [entry(1, "EU dialogue", ("Human rights",), published)])
    )

    assert "24 Nov 2026, 03:30" in text
    assert "24 Nov 2026, 03:30" in html
    assert "23 Nov 2026" not in text


def test_articles_are_newest_first_within_a_topic(templates: Templates, config: Config) -> None:
    older = entry(1, "Older report", ("Human rights",), datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    newer = entry(2, "Newer report", ("Human rights",), datetime(2026, 11, 23, 9, 0, tzinfo=UTC))

    text, _ = parts(digest(templates, config, [older, newer]))

    assert text.index("Newer report") < text.index("Older report")


def test_digest_lists_only_the_topics_the_subscriber_follows(
    templates: Templates, config: Config
) -> None:
    entries = [entry(1, "Vote count", ("Elections",)), entry(2, "EU dialogue", ("Human rights",))]
    subscriber = Subscriber("desk@example.org", "daily", topics=("Elections",))

    message = digest(templates, config, entries, subscriber)

    text, html = parts(message)
    assert message["Subject"] == "1 new article: Elections (1)"
    assert entries[1].url not in html
    assert entries[1].url not in text


def test_teaser_only_article_is_marked_in_both_parts(templates: Templates, config: Config) -> None:
    teaser = "Observers say the human rights dialogue achieved little."
    item = entry(
        1, "EU dialogue", ("Human rights",), text=teaser, teaser_only=True,
        spans=spans_of(teaser, "human rights"),
    )  # fmt: skip

    text, html = parts(digest(templates, config, [item]))

    assert "teaser only: the article page could not be read" in text.lower()
    assert "teaser only: the article page could not be read" in html.lower()


def test_digest_headers_identify_an_automatic_list_message(
    templates: Templates, config: Config
) -> None:
    message = digest(templates, config, [entry(1, "EU dialogue", ("Human rights",))])

    assert message["From"] == "Press Monitor <monitor@localhost>"
    assert message["To"] == "desk@example.org"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Press-Monitor-Kind"] == "digest"
    assert message["List-Id"] == "Press Monitor daily digest <daily.press-monitor.local>"
    # Folded onto its own line when long (RFC 5322); unfolded it is the one URL in <>.
    unsubscribe = message["List-Unsubscribe"].strip()
    assert unsubscribe.startswith("<https://monitor.example.org/unsubscribe/")
    token = unsubscribe.removesuffix(">").rpartition("/")[2]
    secret = tokens.load_secret(config.monitor.state_dir)
    assert tokens.verify(secret, "unsubscribe", token, NOW) == {"e": "desk@example.org"}
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Date"].datetime == NOW
    assert message["Message-ID"].startswith("<")
    assert message["Message-ID"].endswith("@localhost>")


def test_message_id_uses_the_configured_senders_domain(
    templates: Templates, smtp_config: Config
) -> None:
    message = digest(templates, smtp_config, [entry(1, "EU dialogue", ("Human rights",))])

    assert message["From"] == "Desk Monitor <alerts@news-desk.example.org>"
    assert message["Message-ID"].endswith("@news-desk.example.org>")


def test_title_with_line_breaks_cannot_add_a_header(templates: Templates, config: Config) -> None:
    evil = entry(1, "Breaking\r\nBcc: evil@example.net\r\n\r\nbody", ("Human\nrights",))
    subscriber = Subscriber("desk@example.org", "daily")

    message = notify.compose_alert(templates, config, subscriber, [evil], NOW)

    raw = message.as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\nBcc:" not in head
    parsed = reparse(message)
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "Alert: Breaking Bcc: evil@example.net body"


def test_non_ascii_subject_is_encoded_and_reads_back(templates: Templates, config: Config) -> None:
    item = entry(1, "Правозащитники про выборы", ("Права человека",))

    message = notify.compose_digest(
        templates, config, config.digest(None), Subscriber("desk@example.org", "daily"), [item], NOW
    )

    head = message.as_bytes().split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert reparse(message)["Subject"] == "1 new article: Права человека (1)"


def test_alert_subject_names_the_title_of_a_single_article(
    templates: Templates, config: Config
) -> None:
    item = entry(1, "Court upholds death sentence", ("Death penalty",))

    message = notify.compose_alert(
        templates, config, Subscriber("desk@example.org", "daily"), [item], NOW
    )

    assert message["Subject"] == "Alert: Court upholds death sentence"
    assert message["X-Press-Monitor-Kind"] == "alert"
    assert message["List-Id"] == "Press Monitor alerts <alerts.press-monitor.local>"


def test_alert_subject_counts_several_articles_on_their_topic(
    templates: Templates, config: Config
) -> None:
    entries = [entry(i, f"Report {i}", ("Death penalty",)) for i in (1, 2, 3)]

    message = reparse(
        notify.compose_alert(
            templates, config, Subscriber("desk@example.org", "daily"), entries, NOW
        )
    )

    assert message["Subject"] == "Alert: 3 new articles on Death penalty"
    text, html = parts(message)
    for item in entries:
        assert text.count(item.url) == 1
        assert html.count(f'href="{item.url}"') == 1


def test_html_has_inlined_styles_and_is_dark_mode_and_phone_ready(
    templates: Templates, config: Config
) -> None:
    _, html = parts(digest(templates, config, [entry(1, "EU dialogue", ("Human rights",))]))

    soup = BeautifulSoup(html, "html.parser")
    assert soup.find("meta", attrs={"name": "color-scheme"})["content"] == "light dark"
    assert soup.find("meta", attrs={"name": "viewport"}) is not None
    # Inlined for Gmail and Outlook: the styles are on the elements themselves.
    assert "background-color" in soup.find("mark")["style"]
    assert "max-width: 600px" in soup.find(class_="container")["style"]
    # Only the @media rules stay in <style>: dark mode and narrow screens.
    kept = " ".join(style.get_text() for style in soup.find_all("style"))
    assert "prefers-color-scheme: dark" in kept
    assert "max-width: 620px" in kept


def test_template_naming_an_unknown_variable_fails_with_file_and_line(
    tmp_path: Path, config: Config
) -> None:
    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES, folder)
    (folder / "digest.txt").write_bytes((DATA / "digest-undefined.txt").read_bytes())
    templates = notify.load_templates(folder)

    with pytest.raises(TemplateError) as caught:
        digest(templates, config, [entry(1, "EU dialogue", ("Human rights",))])

    assert caught.value.where == "templates/digest.txt:3"
    assert "weather" in caught.value.what


def test_digest_with_nothing_new_says_so(templates: Templates, config: Config) -> None:
    message = digest(templates, config, [])

    text, html = parts(message)
    assert message["Subject"] == "No new articles"
    assert "No new articles on your topics." in text
    assert "No new articles on your topics." in html
