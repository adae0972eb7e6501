"""notify.load_templates: the user's templates/, checked when loaded; the date filter."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor import notify
from monitor.errors import TemplateError
from monitor.notify.render import format_date

DATA = Path(__file__).parent.parent / "data" / "notify"
TEMPLATES = Path(__file__).parent.parent.parent / "templates"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the starter templates/ that a test may break."""
    copy = tmp_path / "templates"
    shutil.copytree(TEMPLATES, copy)
    return copy


def test_starter_templates_load_with_their_partials() -> None:
    templates = notify.load_templates(TEMPLATES)

    assert {"digest.html", "digest.txt", "alert.html", "alert.txt"} <= set(templates.names)
    # Partials are followed from {% extends %} and {% include %} and compiled too.
    assert {"_layout.html", "_entry.html", "_entry.txt", "_footer.txt"} <= set(templates.names)


def test_syntax_error_fails_at_load_with_file_and_line(folder: Path) -> None:
    shutil.copy(DATA / "digest-syntax-error.html", folder / "digest.html")

    with pytest.raises(TemplateError) as caught:
        notify.load_templates(folder)

    assert caught.value.where == "templates/digest.html:6"
    assert str(caught.value).startswith("templates/digest.html:6: unexpected '}'")


def test_syntax_error_in_a_partial_fails_at_load_naming_the_partial(folder: Path) -> None:
    lines = (folder / "_entry.txt").read_text(encoding="utf-8").splitlines()
    lines[-1] = "{% if entry.url %}{{ entry.url }}"  # never closed
    (folder / "_entry.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")

    with pytest.raises(TemplateError) as caught:
        notify.load_templates(folder)

    assert caught.value.where.startswith("templates/_entry.txt:")
    assert "endif" in caught.value.what


def test_missing_template_fails_at_load_naming_it(folder: Path) -> None:
    (folder / "alert.txt").unlink()

    with pytest.raises(TemplateError) as caught:
        notify.load_templates(folder)

    assert caught.value.where == "templates/alert.txt"
    assert "not found" in caught.value.what


def test_missing_partial_names_the_template_that_includes_it(folder: Path) -> None:
    (folder / "_footer.txt").unlink()

    with pytest.raises(TemplateError) as caught:
        notify.load_templates(folder)

    assert caught.value.where == "templates/_footer.txt"
    assert "referenced by templates/" in caught.value.what


def test_date_reads_day_month_year_and_time_in_the_zone() -> None:
    when = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)

    assert format_date(when, ZoneInfo("Asia/Almaty")) == "24 Nov 2026, 08:00"
    assert format_date(when, UTC) == "24 Nov 2026, 03:00"
    assert format_date(when, ZoneInfo("Asia/Almaty"), "%Y-%m-%d %H:%M") == "2026-11-24 08:00"


def test_date_of_none_reads_date_unknown() -> None:
    assert format_date(None, UTC) == "date unknown"
