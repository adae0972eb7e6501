"""The query language of rules (DESIGN §4): text → a small tree of frozen nodes.

    word        the word and its inflections          "a phrase"   words adjacent, in order
    =word       exactly this word (still folded)      ="a phrase"  a phrase of exact words
    prefix*     any word starting with the prefix     "political prisoner*" a prefix in a phrase
    a b, a AND b, a OR b, NOT a, -a, ( … )            a NEAR/5 b   at most 5 words between
    title: text: source: site: lang:  before a term or a ( … ) group
    "…", “…”, „…“ and «…» all quote a phrase

Precedence, tightest first: NOT and -, NEAR, AND (and implicit AND), OR. The operators are
upper-case keywords; "or" and "and" in lower case are words. NEAR joins words, phrases, prefixes
and parenthesised OR-groups of them (or another NEAR), in either order, in the same field.

lark parses (LALR, a basic lexer, so that a keyword is never taken for a word); the tree is
built by callbacks during the parse. Errors raise :class:`QuerySyntaxError` with an offset into
the query; the stage turns it into a RuleError naming the rule file's line and column, or the
query's index (see engine.py and rules.py).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from typing import Literal, NamedTuple, cast
from urllib.parse import urlsplit

from lark import Lark, Token
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from monitor.errors import RuleError
from monitor.match.analyze import fold, host_key, tokens

TextField = Literal["title", "text"]
MetaField = Literal["source", "site", "lang"]
FIELDS = ("title", "text", "source", "site", "lang")
#: Where a term without a field looks.
ANYWHERE: tuple[TextField, ...] = ("title", "text")


class QuerySyntaxError(RuleError):
    """A query that cannot be parsed; ``pos`` is the offset of the spot in the query text.

    Raised by :func:`parse` with no ``where``: compile_queries and load_rules raise or record a
    RuleError naming the query's index, or the rule file's line and column, instead.
    """

    def __init__(self, pos: int, what: str) -> None:
        super().__init__("", what)
        self.pos = pos


class Word(NamedTuple):
    """One word of a term, folded; ``how`` is how it compares with an article's words.

    A named tuple, not a dataclass: the engine hashes words by the hundred thousand.
    """

    text: str
    how: Literal["stem", "exact", "prefix"] = "stem"


@dataclass(frozen=True, slots=True)
class Term:
    """A word (one Word) or a phrase (several, adjacent and in order) in some text fields."""

    words: tuple[Word, ...]
    fields: tuple[TextField, ...] = ANYWHERE
    #: The term as written, its offset and its field's offset in the query, for messages.
    source: str = dataclasses.field(default="", compare=False)
    pos: int = dataclasses.field(default=0, compare=False)
    scope_pos: int = dataclasses.field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Meta:
    """A test of the article's metadata: ``source:`` name, ``site:`` host, ``lang:`` code."""

    field: MetaField
    #: source: the folded words of the name to find; site: one host; lang: one code.
    value: tuple[str, ...]
    source: str = dataclasses.field(default="", compare=False)
    pos: int = dataclasses.field(default=0, compare=False)
    scope_pos: int = dataclasses.field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Near:
    left: Node
    right: Node
    #: At most this many words between the two.
    distance: int
    pos: int = dataclasses.field(default=0, compare=False)


Node = Term | Meta | Not | And | Or | Near


# -- the grammar ------------------------------------------------------------------------------

#: Quotation marks that open a phrase: straight, English, German and Russian (« »).
QUOTES = '"“„«'
_WORD = r'[^\s"“”„«»()=:\-][^\s"“”„«»():]*'
_PHRASE = r'["“„«][^"“”„«»]*["“”»]'
_KEYWORD = r'(?:OR|AND|NOT|NEAR(?:\/[0-9]+)?)(?![^\s"“”„«»()])'
#: The terms, most specific first (each named after the callback that builds it).
_TERMS = {
    "exact_phrase": "=" + _PHRASE,
    "phrase": _PHRASE,
    "exact": "=" + _WORD,
    "word": f"(?!{_KEYWORD}){_WORD}",
}
_TERM = "|".join(f"(?P<{name}>{pattern})" for name, pattern in _TERMS.items())
#: Inside an OR-list: a separating OR (no group name), or a term (named).
_ITEM_RE = re.compile(rf"\s+OR\s+|{_TERM}")
# A parenthesised OR-list of plain terms, the commonest group in rules ("(a OR "b c" OR d*)"),
# is one token: a regular language, split again with _TERM_RE. Lark's parser costs a few
# microseconds per token, and this turns a typical rule's 40 tokens into 5.
_ANY_TERM = "|".join(_TERMS.values())
_OR_LIST = rf"\(\s*(?:{_ANY_TERM})(?:\s+OR\s+(?:{_ANY_TERM}))+\s*\)"

GRAMMAR = rf"""
start: or_expr

?or_expr: and_expr
        | or_expr OR and_expr          -> or_
?and_expr: near_expr
         | and_expr AND near_expr      -> and_
         | and_expr near_expr          -> and_
?near_expr: unary
          | near_expr NEAR unary       -> near
?unary: atom
      | NOT unary                      -> not_
      | MINUS unary                    -> not_
?atom: term
     | FIELD term                      -> scoped
     | FIELD LPAR or_expr RPAR         -> scoped_group
     | FIELD OR_LIST                   -> scoped_or_list
     | LPAR or_expr RPAR               -> group
     | OR_LIST                         -> or_list
term: WORD                             -> word
    | PHRASE                           -> phrase
    | EXACT                            -> exact
    | EXACT_PHRASE                     -> exact_phrase

OR: "OR"
AND: "AND"
NOT: "NOT"
MINUS: "-"
LPAR: "("
RPAR: ")"
NEAR.3: /NEAR(\/[0-9]+)?(?![^\s"()])/
FIELD.3: /(?i:title|text|source|site|lang):/
OR_LIST.4: /{_OR_LIST}/
WORD: /{_WORD}/
EXACT: /={_WORD}/
EXACT_PHRASE: /={_PHRASE}/
PHRASE: /{_PHRASE}/
%ignore /\s+/
"""


class _Builder:
    """lark callbacks: build the final tree while parsing (no intermediate parse tree)."""

    def word(self, children: list[Token]) -> Term:
        return _term_of("word", str(children[0]), children[0].start_pos or 0)

    def phrase(self, children: list[Token]) -> Term:
        return _term_of("phrase", str(children[0]), children[0].start_pos or 0)

    def exact(self, children: list[Token]) -> Term:
        return _term_of("exact", str(children[0]), children[0].start_pos or 0)

    def exact_phrase(self, children: list[Token]) -> Term:
        return _term_of("exact_phrase", str(children[0]), children[0].start_pos or 0)

    def scoped(self, children: list[object]) -> Node:
        field, term = children
        assert isinstance(field, Token)
        assert isinstance(term, Term)
        return _scope(term, str(field)[:-1].lower(), field.start_pos or 0)

    def scoped_group(self, children: list[object]) -> Node:
        field, _, inner, _ = children
        assert isinstance(field, Token)
        return _scope(cast(Node, inner), str(field)[:-1].lower(), field.start_pos or 0)

    def or_list(self, children: list[Token]) -> Or:
        token = children[0]
        start = token.start_pos or 0
        found = (item for item in _ITEM_RE.finditer(token) if item.lastgroup)
        return Or(tuple(_term_of(f.lastgroup or "", f.group(), start + f.start()) for f in found))

    def scoped_or_list(self, children: list[Token]) -> Node:
        field, group = children
        return _scope(self.or_list([group]), str(field)[:-1].lower(), field.start_pos or 0)

    def group(self, children: list[object]) -> object:
        return children[1]

    def not_(self, children: list[object]) -> Not:
        return Not(cast(Node, children[1]))

    def and_(self, children: list[object]) -> And:
        return And(_flat(And, cast(Node, children[0]), cast(Node, children[-1])))

    def or_(self, children: list[object]) -> Or:
        return Or(_flat(Or, cast(Node, children[0]), cast(Node, children[2])))

    def near(self, children: list[object]) -> Near:
        left, token, right = children
        assert isinstance(token, Token)
        pos = token.start_pos or 0
        if "/" not in token:
            raise QuerySyntaxError(pos, "NEAR needs a distance, as in NEAR/5")
        for side in (left, right):
            if not _positional(cast(Node, side)):
                raise QuerySyntaxError(
                    pos, "NEAR joins words, phrases or (… OR …) groups of them, not NOT or AND"
                )
        distance = int(token.partition("/")[2])
        return Near(cast(Node, left), cast(Node, right), distance, pos)

    def start(self, children: list[object]) -> object:
        return children[0]


def _start(token: object) -> int:
    pos = getattr(token, "start_pos", 0)
    return pos if isinstance(pos, int) else 0


def _flat(kind: type[And | Or], left: Node, right: Node) -> tuple[Node, ...]:
    parts = left.children if isinstance(left, kind) else (left,)
    return (*parts, *(right.children if isinstance(right, kind) else (right,)))


def _positional(node: Node) -> bool:
    if isinstance(node, Term | Near):
        return True
    return isinstance(node, Or) and all(_positional(child) for child in node.children)


@cache
def parser() -> Lark:
    """The query parser, built once per process (a few tens of milliseconds)."""
    return Lark(GRAMMAR, parser="lalr", lexer="basic", transformer=_Builder())


def parse(text: str) -> Node:
    """Parse a query; QuerySyntaxError (with an offset into ``text``) when it is wrong."""
    if not text.strip():
        raise QuerySyntaxError(0, "empty query")
    try:
        return cast(Node, parser().parse(text))
    except UnexpectedInput as exc:
        pos, what = _explain(text, exc)
        raise QuerySyntaxError(pos, what) from exc


# -- terms and field scopes -------------------------------------------------------------------


#: Per kind of term: (characters before its text, characters after it, how, is a phrase).
_KINDS = {
    "word": (0, 0, "stem", False),
    "phrase": (1, 1, "stem", True),
    "exact": (1, 0, "exact", False),
    "exact_phrase": (2, 1, "exact", True),
}


def _term_of(kind: str, token: str, pos: int) -> Term:
    """A term from its token (with its quotes or =) at offset ``pos``."""
    before, after, how, phrase = _KINDS[kind]
    return _term(token[before : len(token) - after], pos + before, how, phrase)


def _term(text: str, pos: int, how: str, phrase: bool) -> Term:
    words = _analyse(text, how, phrase)
    if isinstance(words[0], int):
        offset, what = words
        raise QuerySyntaxError(pos + offset, str(what))
    return Term(words, ANYWHERE, text, pos)


@lru_cache(maxsize=65536)
def _analyse(text: str, how: str, phrase: bool) -> tuple[Word, ...] | tuple[int, str]:
    """A term's words, or (offset, error); cached, since rules repeat their terms."""
    if phrase:
        chunks = [(found.group(), found.start()) for found in re.finditer(r"\S+", text)]
        if not chunks:
            return (-1, "empty phrase")
    else:
        chunks = [(text, 0)]
    kind: Literal["stem", "exact"] = "exact" if how == "exact" else "stem"
    words: list[Word] = []
    for chunk, offset in chunks:
        star = chunk.find("*")
        if 0 <= star < len(chunk) - 1:
            return (offset + star, "* may only end a word (prefix*)")
        found = tokens(chunk.rstrip("*"))
        if not found:
            if star >= 0:
                return (offset, "* needs letters before it")
            return (offset, f'"{chunk}" has no letters or digits')
        words.extend(Word(fold(token), kind) for token in found)
        if star >= 0:
            words[-1] = Word(words[-1].text, "prefix")
    return tuple(words)


def _scope(node: Node, field: str, pos: int) -> Node:
    """Put ``node`` (a term or a parenthesised group) under ``field:``, written at ``pos``."""
    if isinstance(node, Term):
        if node.fields == ANYWHERE:
            if field in ("title", "text"):
                return replace(node, fields=(cast(TextField, field),), scope_pos=pos)
            return replace(_meta(field, node.source, node.pos), scope_pos=pos)
        if node.fields != (field,):
            raise QuerySyntaxError(node.scope_pos, f"{node.fields[0]}: inside {field}:( … )")
        return node
    if isinstance(node, Meta):
        if node.field != field:
            raise QuerySyntaxError(node.scope_pos, f"{node.field}: inside {field}:( … )")
        return node
    if isinstance(node, Not):
        return Not(_scope(node.child, field, pos))
    if isinstance(node, And | Or):
        return type(node)(tuple(_scope(child, field, pos) for child in node.children))
    if field not in ("title", "text"):
        raise QuerySyntaxError(node.pos, f"NEAR inside {field}:( … ): it compares text words")
    return Near(
        _scope(node.left, field, pos), _scope(node.right, field, pos), node.distance, node.pos
    )


_HOST = re.compile(r"^[\w-]+(\.[\w-]+)*$")
_LANG = re.compile(r"^[a-z]{2,3}$")


def _meta(field: str, raw: str, pos: int) -> Meta:
    text = raw.strip()
    if field == "source":
        if "*" in text:
            raise QuerySyntaxError(pos + text.index("*"), "source: takes a name, without *")
        value = tuple(fold(token) for token in tokens(text))
        if not value:
            raise QuerySyntaxError(pos, "source: needs a name")
        return Meta("source", value, raw, pos)
    if field == "site":
        host = text.lower().strip(".")
        if "://" in host:
            host = urlsplit(host).hostname or ""
        host = host.removeprefix("www.")
        if not _HOST.match(host):
            raise QuerySyntaxError(pos, "site: takes a host name, such as europa.eu")
        return Meta("site", (host_key(host),), raw, pos)
    code = text.lower()
    if not _LANG.match(code):
        raise QuerySyntaxError(pos, "lang: takes a language code, such as en or ru")
    return Meta("lang", (code,), raw, pos)


# -- error messages ---------------------------------------------------------------------------

_OPERATORS = {"OR", "AND", "NOT", "MINUS", "NEAR", "FIELD", "LPAR"}


def _explain(text: str, exc: Exception) -> tuple[int, str]:
    """A lark error → (offset, message in the user's terms)."""
    if isinstance(exc, UnexpectedCharacters):
        return _bad_character(text, exc.pos_in_stream or 0)
    token = getattr(exc, "token", None)
    kind = getattr(token, "type", "$END") if isinstance(exc, UnexpectedToken) else "$END"
    pos = _start(token) if kind != "$END" else len(text.rstrip())
    before = [t for t in _lexed(text) if t[2] < pos]
    prev = before[-1] if before else None
    if kind == "$END":
        return _at_end(text, prev)
    shown = _shown(kind, str(token))
    if kind == "RPAR" and prev is not None and prev[0] == "LPAR":
        return prev[2], "empty parentheses"
    if prev is not None and prev[0] in _OPERATORS - {"LPAR"}:
        return pos, f"expected a term after {_shown(prev[0], prev[1])}, found {shown}"
    if kind == "RPAR":
        return pos, "unmatched )"
    return pos, f"expected a term before {shown}"


def _at_end(text: str, prev: tuple[str, str, int] | None) -> tuple[int, str]:
    if prev is not None and prev[0] in _OPERATORS - {"LPAR"}:
        return prev[2], f"expected a term after {_shown(prev[0], prev[1])}"
    depth: list[int] = []
    for kind, _, pos in _lexed(text):
        if kind == "LPAR":
            depth.append(pos)
        elif kind == "RPAR" and depth:
            depth.pop()
    if depth:
        return depth[-1], "unclosed ("
    return len(text.rstrip()), "unexpected end of query"


def _bad_character(text: str, pos: int) -> tuple[int, str]:
    char = text[pos]
    if char in QUOTES:
        return pos, "unclosed quote"
    if char == "=":
        return pos, "expected a word or a phrase after ="
    if char == ":":
        start = pos
        while start > 0 and not text[start - 1].isspace() and text[start - 1] not in '()"-':
            start -= 1
        name = text[start:pos]
        if name:
            return start, f'unknown field "{name}:" (fields: {", ".join(FIELDS)})'
    return pos, f"unexpected {char!r}"


def _shown(kind: str, value: str) -> str:
    return value if kind in ("OR", "AND", "NOT", "NEAR", "FIELD") else repr(value)


def _lexed(text: str) -> list[tuple[str, str, int]]:
    """(type, value, offset) of the tokens lark can lex, up to the first it cannot."""
    out: list[tuple[str, str, int]] = []
    try:
        for token in parser().lex(text):
            out.append((token.type, str(token), _start(token)))
    except LarkError:
        pass
    return out


# -- a tree back to query text ----------------------------------------------------------------


def to_text(node: Node) -> str:
    """``node`` as query text that parses back to the same tree (up to redundant parentheses).

    Terms are shown as written (``"human rights"``, ``=exact``, ``prefix*``) with their field
    (``title:torture``); operators in capitals, parentheses only where precedence needs them.
    """
    if isinstance(node, Term):
        return _term_text(node)
    if isinstance(node, Meta):
        value = node.source.strip() or " ".join(node.value)
        quoted = f'"{value}"' if re.search(r"\s", value) else value
        return f"{node.field}:{quoted}"
    if isinstance(node, Not):
        child = node.child
        inner = to_text(child)
        return f"-{inner}" if isinstance(child, Term | Meta) else f"-({inner})"
    if isinstance(node, And):
        return " AND ".join(
            f"({to_text(child)})" if isinstance(child, Or) else to_text(child)
            for child in node.children
        )
    if isinstance(node, Or):
        return " OR ".join(to_text(child) for child in node.children)
    left = to_text(node.left)
    right = to_text(node.right)
    if isinstance(node.left, Or):
        left = f"({left})"
    if isinstance(node.right, Or | Near):
        right = f"({right})"
    return f"{left} NEAR/{node.distance} {right}"


def _term_text(term: Term) -> str:
    written = term.source.strip()
    if not written:
        written = " ".join(w.text + ("*" if w.how == "prefix" else "") for w in term.words)
    exact = any(word.how == "exact" for word in term.words)
    shown = f'"{written}"' if re.search(r"\s", written) else written
    shown = f"={shown}" if exact else shown
    if term.fields != ANYWHERE:
        shown = f"{term.fields[0]}:{shown}"
    return shown


# -- warnings: queries that can never match, or match nearly everything -----------------------

Atom = Term | Meta | Near
#: Give up proving a query unsatisfiable beyond this many undecided atoms (2**n evaluations).
_MAX_FREE = 10


def lint(node: Node) -> list[str]:
    """Warnings about a valid query: it can never match, or it needs none of its terms."""
    if _only_terms(node):
        return []  # AND/OR of words and phrases: all present is a world where it matches
    atoms: list[Atom] = []
    polarity: dict[Atom, set[bool]] = {}
    _collect(node, True, atoms, polarity)
    if _eval(node, set()):
        return ["matches every article that has none of its terms (it needs a positive term)"]
    if all(found == {True} for found in polarity.values()) and _possible(set(atoms)):
        return []  # no NOT: every term present is a world where it matches
    if not _satisfiable(node, atoms, polarity):
        return ["can never match"]
    return []


def _only_terms(node: Node) -> bool:
    if isinstance(node, And | Or):
        return all(_only_terms(child) for child in node.children)
    return isinstance(node, Term)


def _collect(
    node: Node, positive: bool, atoms: list[Atom], polarity: dict[Atom, set[bool]]
) -> None:
    if isinstance(node, Not):
        _collect(node.child, not positive, atoms, polarity)
    elif isinstance(node, And | Or):
        for child in node.children:
            _collect(child, positive, atoms, polarity)
    else:
        if node not in polarity:
            atoms.append(node)
        polarity.setdefault(node, set()).add(positive)


def _eval(node: Node, true: set[Atom]) -> bool:
    if isinstance(node, Not):
        return not _eval(node.child, true)
    if isinstance(node, And):
        return all(_eval(child, true) for child in node.children)
    if isinstance(node, Or):
        return any(_eval(child, true) for child in node.children)
    return node in true


def _implied(atom: Atom, atoms: list[Atom]) -> set[Atom]:
    """The atoms that must be true whenever ``atom`` is (a phrase implies its words…)."""
    parts = _terms_within(atom)
    out: set[Atom] = {atom}
    for other in atoms:
        if isinstance(other, Term) and any(_contains(part, other) for part in parts):
            out.add(other)
    return out


def _terms_within(atom: Atom) -> list[Term]:
    if isinstance(atom, Term):
        return [atom]
    if isinstance(atom, Near):
        return [side for side in (atom.left, atom.right) if isinstance(side, Term)]
    return []


def _contains(big: Term, small: Term) -> bool:
    if not set(big.fields) <= set(small.fields):
        return False
    n = len(small.words)
    return any(big.words[i : i + n] == small.words for i in range(len(big.words) - n + 1))


def _possible(true: set[Atom]) -> bool:
    """False for worlds no article can be in: two languages, two unrelated sites."""
    langs = {atom.value for atom in true if isinstance(atom, Meta) and atom.field == "lang"}
    sites = [atom.value[0] for atom in true if isinstance(atom, Meta) and atom.field == "site"]
    if len(langs) > 1:
        return False
    for a, b in itertools.combinations(sites, 2):
        if not (a.endswith("." + b) or b.endswith("." + a) or a == b):
            return False
    return all(not isinstance(atom, Near) or _fields(atom) for atom in true)


def _fields(node: Node) -> set[str]:
    """The text fields a positional node can be found in (empty: nowhere)."""
    if isinstance(node, Term):
        return set(node.fields)
    if isinstance(node, Near):
        return _fields(node.left) & _fields(node.right)
    if isinstance(node, Or):
        return set().union(*(_fields(child) for child in node.children))
    return set()


def _satisfiable(node: Node, atoms: list[Atom], polarity: dict[Atom, set[bool]]) -> bool:
    # Making an atom that occurs only un-negated true never hurts, so implications matter
    # only towards atoms under a NOT: "a b" -a can never match, "a b" -c can.
    negated = [atom for atom in atoms if False in polarity[atom]]
    implied = {atom: _implied(atom, negated) for atom in atoms}
    free = [
        atom
        for atom in atoms
        if len(polarity[atom]) > 1
        or any(polarity[other] == {False} for other in implied[atom] - {atom})
        or isinstance(atom, Near)
        or (isinstance(atom, Meta) and atom.field in ("lang", "site"))
    ]
    if len(free) > _MAX_FREE:
        return True
    fixed = {atom for atom in atoms if atom not in free and polarity[atom] == {True}}
    for bits in itertools.product((False, True), repeat=len(free)):
        chosen = fixed | {atom for atom, bit in zip(free, bits, strict=True) if bit}
        true = set().union(*(implied[atom] for atom in chosen)) if chosen else set()
        if _possible(true) and _eval(node, true):
            return True
    return False
