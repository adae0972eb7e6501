"""The user's templates/ as a Jinja2 environment, checked when it is loaded.

Every template a message needs (digest.html, digest.txt, alert.html, alert.txt and whatever
they include, import or extend) is read and compiled by :class:`Templates` at construction, so
a syntax error stops the daemon at start-up instead of breaking a digest at 08:00::

    templates/digest.html:12: unexpected end of template, expected 'end of statement block'

Filters for template authors:

- ``when | date`` → "24 Nov 2026, 08:00" in the context's ``timezone`` (UTC when absent),
  "date unknown" for None; ``when | date("%Y-%m-%d")`` takes any strftime format;
- ``topic | slug`` → "human-rights", the name of the topic's feed file.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
import jinja2.meta

from monitor.errors import TemplateError
from monitor.notify.feeds import topic_slug

#: The templates a message is rendered from; partials are found by following their references.
REQUIRED: tuple[str, ...] = (
    "digest.html",
    "digest.txt",
    "alert.html",
    "alert.txt",
    "confirm.html",
    "confirm.txt",
    "web/home.html",
    "web/subscribe.html",
    "web/unsubscribe.html",
    "web/page.html",
)

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_date(value: datetime | None, zone: tzinfo, fmt: str | None = None) -> str:
    """``value`` in ``zone`` as "24 Nov 2026, 08:00" (or by ``fmt``); "date unknown" for None."""
    if value is None:
        return "date unknown"
    local = value.astimezone(zone)
    if fmt is not None:
        return local.strftime(fmt)
    # Month names spelled here, not by strftime("%b"): that one follows the process locale.
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year}, {local:%H:%M}"


@jinja2.pass_context
def _date_filter(
    context: jinja2.runtime.Context, value: datetime | None, fmt: str | None = None
) -> str:
    zone = context.get("timezone")
    return format_date(value, zone if isinstance(zone, tzinfo) else UTC, fmt)


class Templates:
    """The compiled templates of one templates/ directory.

    Construction reads and compiles every template the messages need (with ``check=False``:
    the first render does, for a one-shot command that may render nothing); ``render`` turns a
    Jinja error at run time (an undefined variable…) into a TemplateError with file and line.
    """

    def __init__(self, templates_dir: Path, *, check: bool = True) -> None:
        self.dir = Path(templates_dir)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.dir.resolve()), encoding="utf-8"),
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html", "htm", "xml"), default_for_string=False
            ),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            # Compiled once here: an edited file takes effect when a new Templates is built,
            # so a half-saved partial never mixes with the templates already checked.
            auto_reload=False,
            cache_size=-1,
        )
        self.env.filters["date"] = _date_filter
        self.env.filters["slug"] = topic_slug
        self._compiled: dict[str, jinja2.Template] = {}
        self._checked = False
        if check:
            self.check()

    def check(self) -> None:
        """Read and compile every template the messages need (once); TemplateError if one
        is missing or wrong."""
        if not self._checked:
            for name in REQUIRED:
                self._load(name, referenced_by=None)
            self._checked = True

    def __repr__(self) -> str:
        return f"<Templates dir={str(self.dir)!r} compiled={len(self._compiled)}>"

    @property
    def names(self) -> list[str]:
        """Every template compiled, partials included, sorted."""
        self.check()
        return sorted(self._compiled)

    def where(self, name: str, line: int | None = None) -> str:
        """``templates/digest.html:12``: the directory's own name, the file, the line."""
        place = f"{self.dir.name}/{name}"
        return f"{place}:{line}" if line else place

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        """Render a compiled template; any Jinja error becomes a TemplateError at file:line."""
        self.check()
        template = self._compiled.get(name)
        if template is None:
            raise TemplateError(self.where(name), "not one of the templates loaded")
        try:
            return template.render(context)
        except jinja2.TemplateSyntaxError as exc:  # a syntax error in a dynamic include
            raise TemplateError(
                self.where(exc.name or name, exc.lineno), exc.message or ""
            ) from exc
        except (jinja2.TemplateError, TypeError, ValueError) as exc:
            # UndefinedError and the like, or an expression in the template applied to the wrong
            # kind of value; Jinja rewrites the traceback so the template's frames show its line.
            file, line = self._template_frame(exc.__traceback__, name)
            what = exc.message if isinstance(exc, jinja2.TemplateError) else str(exc)
            raise TemplateError(self.where(file, line), what or type(exc).__name__) from exc

    # -- loading ----------------------------------------------------------------------------
    def _load(self, name: str, referenced_by: str | None) -> None:
        if name in self._compiled:
            return
        try:
            source, filename, _ = self.env.loader.get_source(self.env, name)  # type: ignore[union-attr]  # set above
            self._compiled[name] = self.env.get_template(name)
            references = jinja2.meta.find_referenced_templates(
                self.env.parse(source, name, filename)
            )
        except jinja2.TemplateNotFound as exc:
            what = "template not found"
            if referenced_by is not None:
                what += f" (referenced by {self.where(referenced_by)})"
            raise TemplateError(self.where(name), what) from exc
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                self.where(exc.name or name, exc.lineno), exc.message or ""
            ) from exc
        except UnicodeDecodeError as exc:
            raise TemplateError(self.where(name), "not UTF-8 text") from exc
        except OSError as exc:
            raise TemplateError(self.where(name), "cannot read the template") from exc
        for reference in references:
            # None: a name computed at render time, which cannot be checked in advance.
            if reference is not None:
                self._load(reference, referenced_by=name)

    def _template_frame(self, tb: TracebackType | None, fallback: str) -> tuple[str, int | None]:
        """The innermost traceback frame inside the templates directory: (name, line)."""
        found: tuple[str, int | None] = (fallback, None)
        root = self.dir.resolve()
        for frame_file, line in _frames(tb):
            path = Path(frame_file)
            if path.is_absolute() and path.is_relative_to(root):
                found = (path.relative_to(root).as_posix(), line)
        return found


def _frames(tb: TracebackType | None) -> Iterator[tuple[str, int]]:
    while tb is not None:
        yield tb.tb_frame.f_code.co_filename, tb.tb_lineno
        tb = tb.tb_next
