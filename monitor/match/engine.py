"""Evaluate many queries against one text: tokenise and stem it once, look up, then check.

    text ─tokens─► distinct words ─fold, stem (remembered)─► {stems}, {folded}   once per text
    ∩ inverted index (word key → query word ids) ─► the query words present, per field
    per present word: its queries' clause bits ─► candidates: queries with every clause met
    candidate of plain words (``a (b OR c)``) ─► matched; otherwise its compiled test runs
    matched ─► spans of the terms that made it match (positions → character offsets)

Each query is split into *clauses*, word sets of which each must have a word in the text for
the query to match: ``a AND (b OR c) AND "d e"`` gives {a}, {b, c}, {d}, {e}; NOT, source:,
site: and lang: give none. A query is looked at only when all its clauses are met (counted
with one bit per clause); queries with no clause at all (``lang:ru``, ``-sport``) are tested
on every text. Phrases, NEAR and spans need word positions: they are indexed in one pass over
the text, the first time a candidate asks.

How a query word compares with a word of the text (stems, exact, prefix) is analyze.py's
WordIndex; this module decides which queries hold, given the words present.

Mixed-language rules: a query is stemmed, per article language, exactly as the article's words
are (see analyze.py: the article's language for words in its script, else the script's default
stemmer). So in one rule ``выборы OR elections`` finds "выборах" in a Russian article and
"election" in an English one, and a French article's Latin words are compared with French
stems on both sides. The stems of the queries' words are computed once per article language
met, when it is first met.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from itertools import compress
from operator import eq
from urllib.parse import urlsplit

from monitor.errors import RuleError
from monitor.match import analyze
from monitor.match.analyze import (
    Analyzer,
    Occ,
    Plan,
    WordIndex,
    excerpt,
    host_key,
    locate,
    near,
    plan_for,
)
from monitor.match.query import (
    ANYWHERE,
    And,
    Meta,
    Near,
    Node,
    Not,
    Or,
    QuerySyntaxError,
    Term,
    Word,
    lint,
    parse,
    to_text,
)

Span = tuple[str, int, int]


class Doc:
    """One article (or body) as the queries see it: which query words each field has."""

    def __init__(
        self, matcher: Matcher, plan: Plan, title: str, text: str, meta: tuple[str, str, str]
    ) -> None:
        index = matcher.plan_index(plan)
        self.word_ids = matcher.word_ids
        self.fields = {"title": index.field(title), "text": index.field(text)}
        #: Per field, the ids of the query words found in it; and in either.
        self.present = {name: field.present for name, field in self.fields.items()}
        self.anywhere = self.present["title"] | self.present["text"]
        source, url, lang = meta
        self.source = tuple(analyze.fold(token) for token in analyze.tokens(source))
        self.host = host_key(urlsplit(url).hostname or "") if url else ""
        self.lang = (lang or "").strip().lower().replace("_", "-").split("-")[0]
        self._truth: dict[int, bool] = {}
        self._occ: dict[tuple[int, str], list[Occ]] = {}

    def true(self, node: Node) -> bool:
        """Whether ``node`` holds for this document."""
        if isinstance(node, Term) and len(node.words) == 1:
            wid = self.word_ids[node.words[0]]
            return any(wid in self.present[name] for name in node.fields)
        if isinstance(node, And):
            return all(self.true(child) for child in node.children)
        if isinstance(node, Or):
            return any(self.true(child) for child in node.children)
        if isinstance(node, Not):
            return not self.true(node.child)
        return self.atom(node)

    def atom(self, node: Term | Meta | Near) -> bool:
        """A phrase, NEAR or metadata test, evaluated once per document."""
        known = self._truth.get(id(node))
        if known is None:
            if isinstance(node, Meta):
                known = self._meta(node)
            elif isinstance(node, Term):
                known = any(self._phrase(node, name) for name in node.fields)
            else:
                known = any(self.occurrences(node, name) for name in fields_of(node))
            self._truth[id(node)] = known
        return known

    def _phrase(self, term: Term, name: str) -> bool:
        """Whether the phrase occurs in the field (stops at the first occurrence)."""
        return next(self._starts(term, name), None) is not None

    def _starts(self, term: Term, name: str) -> Iterator[int]:
        """The positions in the field where ``term`` (a word or phrase) begins."""
        present, ids = self.present[name], self.word_ids
        wids = [ids[word] for word in term.words]
        if not all(wid in present for wid in wids):
            return
        field = self.fields[name]
        starts = field.positions(wids[0])
        later = [set(field.positions(wid)) for wid in wids[1:]]
        if not later:
            yield from starts
        elif len(later) == 1:
            second = later[0]
            yield from (p for p in starts if p + 1 in second)
        else:
            yield from (p for p in starts if all(p + k in f for k, f in enumerate(later, 1)))

    def _meta(self, node: Meta) -> bool:
        if node.field == "lang":
            return self.lang == node.value[0]
        if node.field == "site":
            host = node.value[0]
            return self.host == host or self.host.endswith("." + host)
        n = len(node.value)
        return any(self.source[i : i + n] == node.value for i in range(len(self.source) - n + 1))

    def occurrences(self, node: Node, name: str) -> list[Occ]:
        """Where a word, phrase, OR-group or NEAR occurs in one field, by token position."""
        key = (id(node), name)
        found = self._occ.get(key)
        if found is None:
            found = self._occ[key] = self._occurrences(node, name)
        return found

    def _occurrences(self, node: Node, name: str) -> list[Occ]:
        if isinstance(node, Term):
            return self._term(node, name) if name in node.fields else []
        if isinstance(node, Or):
            merged = [occ for child in node.children for occ in self.occurrences(child, name)]
            return sorted(set(merged))
        if isinstance(node, Near):
            left = self.occurrences(node.left, name)
            right = self.occurrences(node.right, name) if left else []
            return near(left, right, node.distance)
        return []

    def _term(self, term: Term, name: str) -> list[Occ]:
        n = len(term.words) - 1
        return [(p, p + n, ((p, p + n),)) for p in self._starts(term, name)]


def fields_of(node: Node) -> tuple[str, ...]:
    """The text fields a word, phrase, OR-group or NEAR can occur in."""
    if isinstance(node, Term):
        return node.fields
    if isinstance(node, Near):
        right = fields_of(node.right)
        return tuple(name for name in fields_of(node.left) if name in right)
    if isinstance(node, Or):
        names = {name for child in node.children for name in fields_of(child)}
        return tuple(name for name in ANYWHERE if name in names)
    return ()


# -- clauses and the inverted index ----------------------------------------------------------


def clauses(node: Node) -> list[tuple[Word, ...]]:
    """Word sets of which each must have a word in the text for ``node`` to be true.

    ``a AND (b OR c) AND "d e"`` gives [(a,), (b, c), (d,), (e,)]; NOT, source:, site: and
    lang: give none (they can be true with no word present).
    """
    if isinstance(node, Term):
        return [(word,) for word in node.words]
    if isinstance(node, And):
        return [clause for child in node.children for clause in clauses(child)]
    if isinstance(node, Near):
        return clauses(node.left) + clauses(node.right)
    if isinstance(node, Or):
        union: list[Word] = []
        for child in node.children:
            options = clauses(child)
            if not options:
                return []
            best: tuple[Word, ...] = min(options, key=_rarity)
            union.extend(best)
        return [tuple(dict.fromkeys(union))]
    return []


def _rarity(clause: tuple[Word, ...]) -> tuple[int, int, int]:
    """Sort key: the clause likely to be met least (fewest words and prefixes, long words)."""
    prefixes = sum(word.how == "prefix" for word in clause)
    return (len(clause), prefixes, -min(len(word.text) for word in clause))


def _plain(node: Node) -> bool:
    """A word anywhere, or an OR of such: true exactly when one of its words is present."""
    if isinstance(node, Or):
        return all(_plain(child) for child in node.children)
    return isinstance(node, Term) and len(node.words) == 1 and node.fields == ANYWHERE


def _words(node: Node) -> Iterator[Word]:
    """Every word of a tree's terms."""
    if isinstance(node, Term):
        yield from node.words
    elif isinstance(node, Not):
        yield from _words(node.child)
    elif isinstance(node, And | Or):
        for child in node.children:
            yield from _words(child)
    elif isinstance(node, Near):
        yield from _words(node.left)
        yield from _words(node.right)


def _direct(node: Node) -> bool:
    """True when all clauses being met means the query matches, with nothing to evaluate."""
    if isinstance(node, And):
        return all(_plain(child) for child in node.children)
    return _plain(node)


class Matcher:
    """Many parsed queries, ready to be matched against texts; safe to share between threads.

    A query is evaluated only when each of its clauses has a word in the text (counted with
    one bit per clause); a query made of plain words (``a (b OR c)``) then matches outright.
    """

    def __init__(self, nodes: Sequence[Node]) -> None:
        #: The queries' trees as parsed: ``why`` shows their terms as each query wrote them.
        self.written = tuple(nodes)
        interned: dict[object, Term | Meta] = {}
        self.nodes = tuple(_intern(node, interned) for node in nodes)
        self.analyzer = Analyzer()
        self.word_ids: dict[Word, int] = {}
        #: Per clause (of any query): the query it belongs to; per query, its clause count.
        self.clause_query: list[int] = []
        self.need: list[int] = []
        self.always: list[int] = []
        word_clauses: list[list[int]] = []
        for q, node in enumerate(self.nodes):
            found = clauses(node)
            self.need.append(len(found))
            if not found:
                self.always.append(q)
            for clause in found:
                cid = len(self.clause_query)
                self.clause_query.append(q)
                for word in clause:
                    wid = self.word_ids.setdefault(word, len(self.word_ids))
                    if wid == len(word_clauses):
                        word_clauses.append([])
                    word_clauses[wid].append(cid)
        for node in interned.values():
            for word in node.words if isinstance(node, Term) else ():
                self.word_ids.setdefault(word, len(self.word_ids))
        #: Per word id: the clauses it meets.
        self.word_clauses = [tuple(cids) for cids in word_clauses]
        self.word_clauses += [()] * (len(self.word_ids) - len(self.word_clauses))
        self.words = list(self.word_ids)
        ids = self.word_ids
        #: Per query that needs one, its compiled test (direct queries never do).
        self.tests = {
            q: _compile(node, ids) for q, node in enumerate(self.nodes) if not _direct(node)
        }
        #: The queries that match whenever all their clauses are met.
        self.direct = frozenset(range(len(self.nodes))).difference(self.tests)
        self._plans: dict[Plan, WordIndex] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, object]:
        return {"nodes": self.written}

    def __setstate__(self, state: dict[str, object]) -> None:
        nodes = state["nodes"]
        assert isinstance(nodes, tuple)
        self.__init__(nodes)  # type: ignore[misc]  # unpickling rebuilds the indexes

    def plan_index(self, plan: Plan) -> WordIndex:
        index = self._plans.get(plan)
        if index is None:
            with self._lock:
                index = self._plans.get(plan)
                if index is None:
                    index = self._plans[plan] = WordIndex(self.words, self.analyzer, plan)
        return index

    def doc(
        self, title: str, text: str, source: str = "", url: str = "", lang: str | None = None
    ) -> Doc:
        return Doc(self, plan_for(lang), title, text, (source, url, lang or ""))

    def matching(self, doc: Doc) -> list[int]:
        """Ids of the queries that match ``doc``, in order.

        The queries with every clause met are found with set and counting operations that run
        in C, with no Python code per query (#6: a loop over the postings of each word present
        cost milliseconds per article at 10,000 rules); only those needing a test run it.
        """
        met = set().union(*map(self.word_clauses.__getitem__, doc.anywhere))
        counts = Counter(map(self.clause_query.__getitem__, met))
        queries = list(counts)
        done = map(eq, map(self.need.__getitem__, queries), counts.values())
        candidates = set(compress(queries, done))
        candidates.update(self.always)
        tests = self.tests
        found = [q for q in candidates.difference(self.direct) if tests[q](doc)]
        found.extend(candidates.intersection(self.direct))
        return sorted(found)

    def why(self, i: int, doc: Doc) -> str:
        """Why query ``i`` matched ``doc``, as query text: the part of it that holds.

        OR alternatives absent from the document are left out (``("human rights" OR torture)
        AND Astana -sport`` matching "torture … Astana" gives ``torture AND Astana``); so are the
        alternatives of an OR-group inside NEAR that took part in no pair within the distance.
        NOT clauses are left out too: they say what the article lacks, and ``why`` shows what it
        has (a query of NOT clauses only is shown as written). Meant for matched queries only:
        it evaluates the query's parts again, which the matching itself may have skipped.
        """
        node = self.written[i]
        return to_text(_satisfied(node, doc) or node)

    def spans(self, i: int, doc: Doc) -> list[Span]:
        """(field, start, end) character offsets of the terms that made query ``i`` match."""
        pieces: set[tuple[str, int, int]] = set()
        _collect(self.nodes[i], doc, pieces)
        out: list[Span] = []
        for name, first, last in sorted(pieces, key=lambda p: (p[0] != "title", p[1], -p[2])):
            offsets = doc.fields[name].offsets()
            start, end = offsets[first][0], offsets[last][1]
            if out and out[-1][0] == name and start <= out[-1][2]:
                out[-1] = (name, out[-1][1], max(end, out[-1][2]))
            else:
                out.append((name, start, end))
        return out


Test = Callable[[Doc], bool]


def _compile(node: Node, ids: dict[Word, int]) -> Test:
    """A query as nested closures: much faster to evaluate than walking the tree."""
    if isinstance(node, Term):
        wids = [ids[word] for word in node.words]
        wid = wids[0]
        if len(wids) > 1:
            term = node
            return lambda doc: all(w in doc.anywhere for w in wids) and doc.atom(term)
        if node.fields == ANYWHERE:
            return lambda doc: wid in doc.anywhere
        name = node.fields[0]
        return lambda doc: wid in doc.present[name]
    if isinstance(node, Not):
        test = _compile(node.child, ids)
        return lambda doc: not test(doc)
    if isinstance(node, Or) and any(_plain(child) for child in node.children):
        # the plain words in one set test; phrases, NEARs… only when that fails
        words = frozenset(
            ids[word] for child in node.children if _plain(child) for word in _words(child)
        )
        others = sorted((child for child in node.children if not _plain(child)), key=_cost)
        if not others:
            return lambda doc: not words.isdisjoint(doc.anywhere)
        rest = _any([_compile(child, ids) for child in others])
        return lambda doc: not words.isdisjoint(doc.anywhere) or rest(doc)
    if isinstance(node, And | Or):
        # cheap tests first: a word look-up often decides before a phrase or NEAR is needed
        children = sorted(node.children, key=_cost)
        tests = [_compile(child, ids) for child in children]
        if len(tests) == 2:
            one, two = tests
            if isinstance(node, And):
                return lambda doc: one(doc) and two(doc)
            return lambda doc: one(doc) or two(doc)
        return _all(tests) if isinstance(node, And) else _any(tests)
    atom = node
    return lambda doc: doc.atom(atom)


def _all(tests: list[Test]) -> Test:
    def test_all(doc: Doc) -> bool:
        for test in tests:
            if not test(doc):
                return False
        return True

    return test_all


def _any(tests: list[Test]) -> Test:
    def test_any(doc: Doc) -> bool:
        for test in tests:
            if test(doc):
                return True
        return False

    return test_any


def _cost(node: Node) -> int:
    """A rough cost of evaluating ``node``: word look-ups are cheap, positions are not."""
    if isinstance(node, Term):
        return 1 if len(node.words) == 1 else 20
    if isinstance(node, Not):
        return _cost(node.child)
    if isinstance(node, And | Or):
        return sum(_cost(child) for child in node.children)
    return 5 if isinstance(node, Meta) else 50


def _collect(node: Node, doc: Doc, out: set[tuple[str, int, int]]) -> None:
    """Token ranges of the terms of satisfied positive clauses (never of NOT clauses)."""
    if isinstance(node, And):
        for child in node.children:
            _collect(child, doc, out)
    elif isinstance(node, Or):
        for child in node.children:
            if doc.true(child):
                _collect(child, doc, out)
    elif isinstance(node, Term | Near):
        for name in fields_of(node):
            for occ in doc.occurrences(node, name):
                out.update((name, first, last) for first, last in occ[2])


def _satisfied(node: Node, doc: Doc) -> Node | None:
    """The part of a true ``node`` that holds in ``doc``; None when nothing positive does."""
    if isinstance(node, And):
        kept = [
            part
            for child in node.children
            if not isinstance(child, Not) and (part := _satisfied(child, doc)) is not None
        ]
        if not kept:
            return None
        return kept[0] if len(kept) == 1 else And(tuple(kept))
    if isinstance(node, Or):
        kept = [
            part
            for child in node.children
            if doc.true(child) and (part := _satisfied(child, doc)) is not None
        ]
        if not kept:
            return None
        return kept[0] if len(kept) == 1 else Or(tuple(kept))
    if isinstance(node, Near):
        used = {
            (name, piece)
            for name in fields_of(node)
            for occ in doc.occurrences(node, name)
            for piece in occ[2]
        }
        return _near_side(node, doc, used)
    if isinstance(node, Not):
        return None
    return node


def _near_side(node: Node, doc: Doc, used: set[tuple[str, tuple[int, int]]]) -> Node:
    """A side of a NEAR with the OR alternatives that took part in no pair left out."""
    if isinstance(node, Near):
        left, right = _near_side(node.left, doc, used), _near_side(node.right, doc, used)
        return Near(left, right, node.distance, node.pos)
    if isinstance(node, Or):
        kept = [
            _near_side(child, doc, used)
            for child in node.children
            if any(
                all((name, piece) in used for piece in occ[2])
                for name in fields_of(child)
                for occ in doc.occurrences(child, name)
            )
        ]
        if not kept:
            return node
        return kept[0] if len(kept) == 1 else Or(tuple(kept))
    return node


def _intern(node: Node, seen: dict[object, Term | Meta]) -> Node:
    """Share equal terms between queries, so that a text evaluates each term once."""
    if isinstance(node, Term):
        return seen.setdefault((node.words, node.fields), node)
    if isinstance(node, Meta):
        return seen.setdefault((node.field, node.value), node)
    if isinstance(node, Not):
        child = _intern(node.child, seen)
        return node if child is node.child else Not(child)
    if isinstance(node, And | Or):
        children = tuple(_intern(child, seen) for child in node.children)
        if all(new is old for new, old in zip(children, node.children, strict=True)):
            return node
        return type(node)(children)
    left, right = _intern(node.left, seen), _intern(node.right, seen)
    if left is node.left and right is node.right:
        return node
    return Near(left, right, node.distance, node.pos)


# -- DESIGN §8: compile_queries ---------------------------------------------------------------


class CompiledQueries:
    """Queries compiled together; ``match(text, lang)`` gives the indices of those matching."""

    def __init__(
        self, queries: Sequence[str], nodes: Sequence[Node], warnings: Sequence[RuleError]
    ) -> None:
        self.queries = tuple(queries)
        self.warnings = tuple(warnings)
        self._matcher = Matcher(nodes)

    def match(self, text: str, lang: str | None = None) -> set[int]:
        """Indices of the queries matching ``text``, an article body without a title."""
        return set(self._matcher.matching(self._matcher.doc("", text, lang=lang)))

    def __len__(self) -> int:
        return len(self.queries)

    def __repr__(self) -> str:
        return f"<CompiledQueries queries={len(self.queries)} warnings={len(self.warnings)}>"


def compile_queries(queries: list[str]) -> CompiledQueries:
    """Parse and index ``queries``; a bad one raises RuleError naming ``query[<index>]``."""
    parsed: dict[str, Node] = {}
    nodes: list[Node] = []
    warnings: list[RuleError] = []
    for i, query in enumerate(queries):
        node = parsed.get(query)
        if node is None:
            try:
                node = parsed[query] = parse(query)
            except QuerySyntaxError as exc:
                raise query_error(f"query[{i}]", query, exc) from exc
            warnings.extend(RuleError(f"query[{i}]", what) for what in lint(node))
        nodes.append(node)
    return CompiledQueries(queries, nodes, warnings)


def query_error(where: str, query: str, exc: QuerySyntaxError) -> RuleError:
    """A RuleError for a query given on its own: line and column inside the query."""
    line, column, text = locate(query, exc.pos)
    at = f"column {column}" if "\n" not in query.strip("\n") else f"line {line}, column {column}"
    return RuleError(where, f"{at}: {exc.what}", excerpt=excerpt(text, column))
