"""Rule files: ``rules_dir/*.toml`` → a RuleSet; a RuleSet + an Article → Matches.

    load_rules:  each *.toml, sorted by name ─tomllib─► [[rule]] tables
                 each table checked (keys, id, topic, query, alert) ─► Rules, or RuleErrors
                 a file with any error contributes no rules; the other files still load
    RuleSet.match(article) ─engine─► one Match per matching rule, with terms and spans
    RuleFiles.load(now) (the daemon's reload): as load_rules, but a file that breaks keeps
                 the last version of it that loaded; a deleted file drops its rules

Every error names ``file:line:col`` (the file relative to the rules directory's parent, as
``rules/elections.toml``) and carries the offending line with a caret under the spot::

    rules/elections.toml:4:21: expected a term after OR
        query = "election OR"
                          ^

tomllib reports positions only for syntax errors, so the loader finds each ``[[rule]]`` table
and key in the file text itself, and maps a query's syntax error from an offset in the query
string to the file, through escapes and ``'''`` multi-line strings. Queries that are valid
but can never match (``a -a``), or that need none of their terms (``-sport``), are warnings.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from monitor.errors import RuleError
from monitor.match.analyze import excerpt, fold, locate
from monitor.match.engine import Matcher, query_error
from monitor.match.query import Node, QuerySyntaxError, lint, parse
from monitor.models import AlertMode, Article, Match, Rule

KEYS = ("id", "topic", "query", "alert")
ALERTS: tuple[AlertMode, ...] = ("digest", "immediate")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_TOML_AT = re.compile(
    r"^(?P<what>.*?)\s*\((?:at line (?P<line>\d+), column (?P<col>\d+)|at end of document)\)$"
)
#: A place in a rule file: an offset into its text, or a (line, column).
Place = int | tuple[int, int]
#: Where a key (or, with True, its value) of the current table is.
_At = Callable[..., Place]


class RuleSet:
    """The rules in force, compiled for matching; with the errors and warnings of loading."""

    def __init__(
        self,
        rules: Sequence[Rule] = (),
        errors: Iterable[RuleError] = (),
        warnings: Iterable[RuleError] = (),
        *,
        nodes: Sequence[Node] | None = None,
        files: Iterable[FileStatus] = (),
    ) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.errors: tuple[RuleError, ...] = tuple(errors)
        self.warnings: tuple[RuleError, ...] = tuple(warnings)
        #: Each rule file found, with the rules it contributes and its errors (#6).
        self.files: tuple[FileStatus, ...] = tuple(files)
        #: Each topic once, in the order the rules name them.
        self.topics: tuple[str, ...] = tuple(dict.fromkeys(rule.topic for rule in self.rules))
        if nodes is None:
            nodes = [_parse_rule(rule) for rule in self.rules]
        self._matcher = Matcher(nodes)

    @classmethod
    def from_rules(cls, rules: Iterable[Rule]) -> RuleSet:
        """Rules given in code; a bad query raises RuleError."""
        return cls(tuple(rules))

    @classmethod
    def from_query(cls, query: str, rule_id: str = "query") -> RuleSet:
        """One query as a rule (``monitor rules test``); a bad query raises RuleError."""
        try:
            node = parse(query)
        except QuerySyntaxError as exc:
            raise query_error("query", query, exc) from exc
        return cls((Rule(rule_id, rule_id, query),), nodes=[node])

    def match(self, article: Article) -> list[Match]:
        """One Match per rule matching ``article``, in rule order."""
        matcher = self._matcher
        doc = matcher.doc(
            article.title, article.text, article.source, article.url, article.language
        )
        out = []
        for i in matcher.matching(doc):
            rule = self.rules[i]
            spans = matcher.spans(i, doc)
            terms: dict[str, str] = {}
            for name, start, end in spans:
                term = getattr(article, name)[start:end]
                terms.setdefault(fold(" ".join(term.split())), term)
            why = matcher.why(i, doc)
            out.append(
                Match(rule.id, rule.topic, tuple(terms.values()), tuple(spans), rule.alert, why)
            )
        return out

    def __repr__(self) -> str:
        return (
            f"<RuleSet rules={len(self.rules)} topics={len(self.topics)}"
            f" errors={len(self.errors)} warnings={len(self.warnings)}>"
        )


def _parse_rule(rule: Rule) -> Node:
    try:
        return parse(rule.query)
    except QuerySyntaxError as exc:
        where = f"{rule.file}:{rule.line}" if rule.file else f'rule "{rule.id}"'
        raise query_error(where, rule.query, exc) from exc


# -- loading ----------------------------------------------------------------------------------


def load_rules(rules_dir: Path) -> RuleSet:
    """Every ``rules_dir/*.toml``; a bad file's errors go in ``.errors``, not raised."""
    return RuleFiles(rules_dir).load()


@dataclass(frozen=True, slots=True)
class FileStatus:
    """One rule file as a loaded RuleSet has it (for the log and `monitor status`)."""

    #: The file as messages name it: ``rules/elections.toml``.
    name: str
    #: Rules in force from it: its current version's, or its last good version's when broken.
    rules: int
    #: Its current errors; empty when this version loaded.
    errors: tuple[RuleError, ...] = ()
    #: When the version in force was loaded: ``now`` for a file that loaded, the time of the
    #: last good load for a broken file that keeps one; None when none of its rules run.
    loaded_at: datetime | None = None

    @property
    def kept(self) -> bool:
        """True when the file is broken and its last good version runs instead."""
        return bool(self.errors) and self.rules > 0


class RuleFiles:
    """The rule files of a directory, loaded again and again (the daemon's hot reload, #6).

    Each load reads every file. A file with errors contributes the rules of the last version
    of it that loaded through this object, if any, so that a typo saved in one file does not
    silence its rules while the other files' edits still apply; its errors are reported all
    the same. A file that is gone drops its rules. Ids must be unique across files: a kept
    version whose ids another file has taken since is dropped too.
    """

    def __init__(self, rules_dir: Path) -> None:
        self.rules_dir = rules_dir
        #: The last good version of each file: its loaded rules and when it was loaded.
        self._good: dict[str, tuple[_RuleFile, datetime | None]] = {}

    def __repr__(self) -> str:
        return f"<RuleFiles dir={self.rules_dir} good={len(self._good)}>"

    def load(self, now: datetime | None = None) -> RuleSet:
        """The rule set of the files as they are now (``now`` stamps the versions loaded)."""
        if not self.rules_dir.is_dir():
            self._good.clear()
            return RuleSet(errors=[RuleError(str(self.rules_dir), "no such directory")])
        base = self.rules_dir.resolve().name
        rules: list[Rule] = []
        nodes: list[Node] = []
        errors: list[RuleError] = []
        warnings: list[RuleError] = []
        files: list[FileStatus] = []
        ids: dict[str, str] = {}
        present: set[str] = set()
        for path in sorted(self.rules_dir.glob("*.toml")):
            if path.name.startswith(".") or not path.is_file():
                continue  # editors' lock and backup files, folders
            name = f"{base}/{path.name}"
            present.add(name)
            loaded = _RuleFile(name, ids)
            loaded.load(path)
            used: _RuleFile | None = loaded
            loaded_at = now
            if loaded.errors:
                errors.extend(loaded.errors)
                used, loaded_at = self._good.get(name, (None, None))
                if used is not None and used.own_ids.keys() & ids.keys():
                    used, loaded_at = None, None  # another file has taken its ids since
            else:
                self._good[name] = (loaded, now)
            if used is None:
                files.append(FileStatus(name, 0, tuple(loaded.errors)))
                continue
            ids.update(used.own_ids)  # a broken file claims no ids beyond its kept version's
            rules.extend(used.rules)
            nodes.extend(used.nodes)
            warnings.extend(used.warnings)
            files.append(FileStatus(name, len(used.rules), tuple(loaded.errors), loaded_at))
        for gone in self._good.keys() - present:
            del self._good[gone]
        return RuleSet(rules, errors, warnings, nodes=nodes, files=files)


@dataclass
class _Table:
    """Where a table and its keys are in the file: 1-based line and column."""

    line: int
    col: int = 1
    #: key → (line, key column, offset of the value in the file text)
    keys: dict[str, tuple[int, int, int]] = field(default_factory=dict)


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]*?)\s*\]")
_KEY = re.compile(r"""^(\s*)("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*=\s*""")


def _locate_tables(text: str) -> tuple[_Table, list[_Table]]:
    """The top level and each ``[[rule]]`` table, found line by line in the file text."""
    top = _Table(1)
    tables: list[_Table] = []
    current: _Table | None = top
    offset = 0
    closing = ""
    for number, line in enumerate(text.split("\n"), 1):
        start, offset = offset, offset + len(line) + 1
        if closing:
            if closing in line:
                closing = ""
            continue
        header = _HEADER.match(line)
        if header:
            name = header.group(2).split(".")[0].strip("\"'")
            if header.group(1) == "[[" and header.group(2) == "rule":
                current = _Table(number, header.start(1) + 1)
                tables.append(current)
            else:
                current = None
            top.keys.setdefault(name, (number, header.start(2) + 1, start + header.start(2)))
            continue
        key = _KEY.match(line)
        if key and current is not None:
            name = key.group(2).strip("\"'")
            current.keys.setdefault(name, (number, key.start(2) + 1, start + key.end()))
            rest = line[key.end() :]
            for quotes in ('"""', "'''"):
                if rest.startswith(quotes) and quotes not in rest[3:]:
                    closing = quotes
    return top, tables


class _RuleFile:
    """One rule file being loaded: its rules, or its errors."""

    def __init__(self, name: str, ids: dict[str, str]) -> None:
        self.name = name
        #: Ids of the files loaded before, and of this file's rules so far: id → "file:line".
        self.ids = ids
        self.own_ids: dict[str, str] = {}
        self.text = ""
        self.rules: list[Rule] = []
        self.nodes: list[Node] = []
        self.errors: list[RuleError] = []
        self.warnings: list[RuleError] = []

    def problem(self, place: Place, what: str) -> RuleError:
        """A RuleError at a place in this file, with the line and a caret."""
        if isinstance(place, int):
            line, col, text = locate(self.text, place)
        else:
            line, col = place
            lines = self.text.split("\n")
            text = lines[line - 1] if 0 < line <= len(lines) else ""
        return RuleError(f"{self.name}:{line}:{col}", what, excerpt=excerpt(text, col))

    def error(self, place: Place, what: str) -> None:
        self.errors.append(self.problem(place, what))

    def load(self, path: Path) -> None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            self.errors.append(RuleError(self.name, f"cannot read: {exc.strerror or exc}"))
            return
        try:
            self.text = raw.decode("utf-8-sig").replace("\r\n", "\n")
        except UnicodeDecodeError as exc:
            self.text = raw[: exc.start].decode("utf-8-sig", "replace").replace("\r\n", "\n")
            self.error(len(self.text), "not UTF-8 text")
            return
        try:
            data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            self._toml_error(exc)
            return
        top, tables = _locate_tables(self.text)
        for key in data:
            if key != "rule":
                line, col, _ = top.keys.get(key, (1, 1, 0))
                self.error(
                    (line, col), f"{key}: unknown {_kind(data[key])}{_suggest(key, ['rule'])}"
                )
        found = data.get("rule", [])
        if not isinstance(found, list) or not all(isinstance(t, dict) for t in found):
            line, col, _ = top.keys.get("rule", (1, 1, 0))
            self.error((line, col), "rule: write each rule as a [[rule]] table")
            return
        if len(tables) != len(found):  # inline tables: positions unknown, point at line 1
            tables = [_Table(1) for _ in found]
        for table, where in zip(found, tables, strict=True):
            self._rule(table, where)
        self.errors.sort(key=_position)

    def _toml_error(self, exc: tomllib.TOMLDecodeError) -> None:
        message = str(exc)
        found = _TOML_AT.match(message)
        what = found.group("what") if found else message
        if found and found.group("line"):
            self.error((int(found.group("line")), int(found.group("col"))), f"invalid TOML: {what}")
        else:
            self.error(len(self.text.rstrip("\n")), f"invalid TOML: {what}")

    def _rule(self, table: dict[str, object], where: _Table) -> None:
        before = len(self.errors)

        def at(key: str, value: bool = False) -> Place:
            if key not in where.keys:
                return (where.line, where.col)
            line, col, offset = where.keys[key]
            return offset if value else (line, col)

        for key in table:
            if key not in KEYS:
                self.error(at(key), f"{key}: unknown key{_suggest(key, KEYS)}")
        rule_id = self._string(table, "id", at)
        if rule_id is not None:
            self._check_id(rule_id, at)
        topic = self._string(table, "topic", at, required=False)
        query = self._string(table, "query", at)
        alert = table.get("alert", "digest")
        if alert not in ALERTS:
            shown = f'"{alert}"' if isinstance(alert, str) else type(alert).__name__
            hint = _suggest(alert, ALERTS) if isinstance(alert, str) else ""
            self.error(
                at("alert", True), f'alert: expected "digest" or "immediate", got {shown}{hint}'
            )
        if query is None or rule_id is None:
            return
        node = self._query(query, at("query", True))
        if node is None or len(self.errors) > before:
            return
        line = where.keys["query"][0] if "query" in where.keys else where.line
        mode: AlertMode = "immediate" if alert == "immediate" else "digest"
        self.rules.append(Rule(rule_id, topic or rule_id, query, mode, file=self.name, line=line))
        self.nodes.append(node)

    def _string(
        self, table: dict[str, object], key: str, at: _At, required: bool = True
    ) -> str | None:
        value = table.get(key)
        if value is None:
            if required:
                self.error(at(key), f"{key}: missing")
            return None
        if not isinstance(value, str):
            self.error(at(key, True), f"{key}: expected a string, got {type(value).__name__}")
            return None
        if not value.strip():
            self.error(at(key, True), f"{key}: empty")
            return None
        return value

    def _check_id(self, rule_id: str, at: _At) -> None:
        if not _SLUG.match(rule_id):
            slug = re.sub(r"[^a-z0-9_]+", "-", fold(rule_id)).strip("-") or "rule"
            self.error(
                at("id", True),
                f'id: "{rule_id}" is not a slug: use lower-case letters, digits, - and _'
                f' (such as "{slug}")',
            )
            return
        place = at("id")
        line = place[0] if isinstance(place, tuple) else locate(self.text, place)[0]
        here = f"{self.name}:{line}"
        first = self.ids.get(rule_id) or self.own_ids.get(rule_id)
        if first:
            self.error(place, f'id: duplicate "{rule_id}" (first at {first})')
        else:
            self.own_ids[rule_id] = here

    def _query(self, query: str, place: Place) -> Node | None:
        offsets = _value_offsets(self.text, place, query) if isinstance(place, int) else None
        try:
            node = parse(query)
        except QuerySyntaxError as exc:
            spot = offsets[exc.pos] if offsets else place
            self.error(spot, exc.what)
            return None
        spot = offsets[0] if offsets else place
        self.warnings.extend(self.problem(spot, warning) for warning in lint(node))
        return node


def _position(error: RuleError) -> tuple[int, int]:
    _, line, col = error.where.rsplit(":", 2)
    return int(line), int(col)


def _kind(value: object) -> str:
    return "table" if isinstance(value, dict | list) else "key"


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""


_ESCAPES = {
    "b": "\b",
    "t": "\t",
    "n": "\n",
    "f": "\f",
    "r": "\r",
    '"': '"',
    "\\": "\\",
    "e": "\x1b",
}


def _value_offsets(text: str, start: int, value: str) -> list[int] | None:
    """The file offset of each character of a string value (and of its end), or None.

    ``start`` is where the value begins in the file (its opening quote). Literal strings map
    one to one; basic strings are decoded escape by escape. The result is checked against
    tomllib's value, so an unusual spelling gives None (the caller then points at the value).
    """
    quotes = next((q for q in ("'''", '"""', "'", '"') if text.startswith(q, start)), "")
    if not quotes:
        return None
    pos = start + len(quotes)
    if len(quotes) == 3 and text.startswith("\n", pos):
        pos += 1
    out: list[int] = []
    chars: list[str] = []
    while len(chars) < len(value) and pos < len(text):
        if quotes[0] == '"' and text[pos] == "\\":
            pos = _escape(text, pos, chars, out)
            continue
        out.append(pos)
        chars.append(text[pos])
        pos += 1
    if "".join(chars) != value:
        return None
    out.append(pos)
    return out


def _escape(text: str, pos: int, chars: list[str], out: list[int]) -> int:
    """Decode the escape at ``pos`` into ``chars``/``out``; return the offset after it."""
    code = text[pos + 1 : pos + 2]
    if code in _ESCAPES:
        out.append(pos)
        chars.append(_ESCAPES[code])
        return pos + 2
    if code in ("u", "U"):
        width = 4 if code == "u" else 8
        try:
            chars.append(chr(int(text[pos + 2 : pos + 2 + width], 16)))
        except ValueError:
            chars.append("\ufffd")
        out.append(pos)
        return pos + 2 + width
    # a line-ending backslash: the newline and the whitespace after it are dropped
    end = pos + 1
    while end < len(text) and text[end] in " \t\n":
        end += 1
    return end
