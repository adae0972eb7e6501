"""Evaluate many queries against one text: tokenise it once, look up, then check.

    text ─tokens─► codes (memo: word as written → where the query words it matches are, and
    whether it can start or end a two-word phrase) ─numpy─► query words present; adjacent
    pairs of a starting and an ending word ─memo of pairs─► two-word phrases present
    present keys ─► clause ids met, and queries a NOT key excludes ─count per query (numpy)─►
    candidates: direct ones, not excluded ─► matched
    other candidates (NEAR, 3+ word phrases, fields, metadata) ─positions of their words
    (one pass per field), compiled test─► matched
    matched (RuleSet only) ─► spans and ``why`` of the terms that made each match

Each query is split into *clauses*, key sets of which each must have a key in the text for
the query to match. A key is a word or a two-word phrase (``"human rights"``, and a hyphenated
word such as ``Nur-Sultan``): a text's two-word phrases are found from its adjacent word pairs
in one pass, so they cost a look-up like words. ``a AND (b OR c) AND "d e"`` gives {a},
{b, c}, {"d e"}; longer phrases give a clause per word; NOT, source:, site: and lang: give
none. A query is looked at only when all its clauses are met; queries with no clause at all
(``lang:ru``, ``-sport``) are tested on every text. A *direct* query, an AND of plain parts
(words and two-word phrases anywhere, OR-groups of them) and NOTs of plain parts, then
matches unless a NOT key is present, all with array operations in numpy. The others run a
compiled test, made the first time the query is a candidate; the positions of the words
those tests may need are found in one pass over each field first.

Why this shape (#6, bench/match_bench.py, 10,000 generated rules on 181 real article bodies):
per-query Python code (a loop over postings, a closure per candidate) cost milliseconds per
article when hundreds of rules hit; everything that runs per key, clause or query is now
numpy array operations, and Python runs per distinct text word only the first time it is
met.

How a query word compares with a word of the text (stems, exact, prefix) is analyze.py's
WordIndex; this module decides which queries hold, given the keys present.

Mixed-language rules: a query is stemmed, per article language, exactly as the article's words
are (see analyze.py: the article's language for words in its script, else the script's default
stemmer). So in one rule ``выборы OR elections`` finds "выборах" in a Russian article and
"election" in an English one, and a French article's Latin words are compared with French
stems on both sides. The stems of the queries' words are computed once per article language
met, when it is first met.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from itertools import chain
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from monitor.errors import RuleError
from monitor.match import analyze
from monitor.match.analyze import (
    Analyzer,
    Occ,
    Plan,
    Stretch,
    WordIndex,
    excerpt,
    host_key,
    locate,
    near,
    near_any,
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

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

Span = tuple[str, int, int]


class Doc:
    """One article (or body) as the queries see it: which query words each field has."""

    def __init__(
        self, matcher: Matcher, plan: Plan, title: str, text: str, meta: tuple[str, str, str]
    ) -> None:
        index = matcher.plan_index(plan)
        self.key_ids = matcher.key_ids
        self.fields = {"title": index.field(title), "text": index.field(text)}
        in_title, in_text = self.fields["title"].keys, self.fields["text"].keys
        #: The ids of the query keys (words, two-word phrases) found in either field, sorted
        #: per field (numpy; a key in both is there twice).
        self.keys = in_text
        if len(in_title):
            import numpy as np

            self.keys = np.concatenate((in_title, in_text))
        source, url, lang = meta
        self.source = (
            tuple(analyze.fold(token) for token in analyze.tokens(source)) if source else ()
        )
        self.host = host_key(urlsplit(url).hostname or "") if url else ""
        self.lang = (lang or "").strip().lower().replace("_", "-").split("-")[0]
        self._truth: dict[int, bool] = {}
        self._occ: dict[tuple[int, str], list[Occ]] = {}
        self._spans: dict[tuple[int, str], list[tuple[int, int]]] = {}
        self._by_key: dict[tuple[int, str], list[Stretch]] = {}

    @cached_property
    def present(self) -> dict[str, set[int]]:
        """Per field, the ids of the query keys found in it, as a set (made when a test asks)."""
        return {name: field.present for name, field in self.fields.items()}

    @cached_property
    def anywhere(self) -> set[int]:
        """The ids of the query keys found in either field, as a set."""
        in_title, in_text = self.present["title"], self.present["text"]
        # not copied when one field has none (compile_queries' texts have no title); the sets
        # are never changed after this
        return in_title | in_text if in_title and in_text else in_title or in_text

    def locate(self, wids: set[int]) -> None:
        """Find, in one pass per field, the positions of those of ``wids`` each field has."""
        for name, field in self.fields.items():
            here = self.present[name].intersection(wids)
            if here:
                field.locate(here)

    def true(self, node: Node) -> bool:
        """Whether ``node`` holds for this document."""
        if isinstance(node, Term) and len(node.words) <= 2:
            kid = self.key_ids[key_of(node)]
            return any(kid in self.present[name] for name in node.fields)
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
                known = any(self._near(node, name) for name in fields_of(node))
            self._truth[id(node)] = known
        return known

    def _near(self, node: Near, name: str) -> bool:
        """Whether the two sides of a NEAR occur close enough in the field."""
        if not (_flat_side(node.left) and _flat_side(node.right)):
            return bool(self.occurrences(node, name))
        left = self.stretches(node.left, name)
        return bool(left) and near_any(left, self.stretches(node.right, name), node.distance)

    def stretches(self, node: Node, name: str) -> list[tuple[int, int]]:
        """(first, last) token positions of a term's or OR-group's occurrences, in order."""
        key = (id(node), name)
        found = self._spans.get(key)
        if found is None:
            if isinstance(node, Term) and len(node.words) == 1:
                wid = self.key_ids[node.words[0]]
                if wid in self.present[name] and name in node.fields:
                    found = [(p, p) for p in self.fields[name].positions(wid)]
                else:
                    found = []
            elif isinstance(node, Term):
                n = len(node.words) - 1
                found = (
                    [(p, p + n) for p in self._starts(node, name)] if name in node.fields else []
                )
            else:
                assert isinstance(node, Or)
                found = sorted({s for c in node.children for s in self.stretches(c, name)})
            self._spans[key] = found
        return found

    def side(self, terms: list[SideTerm], name: str) -> list[Stretch]:
        """The stretches of the terms of a NEAR side in one field, in order."""
        present = self.present[name]
        if not present:
            return []  # an empty field (compile_queries has no title): no term to look up
        found: list[Stretch] = []
        many = False
        for kid, wids, fields, term in terms:
            if name not in fields:
                continue
            if kid in present if kid is not None else all(w in present for w in wids):
                key = (kid if kid is not None else -1 - id(term), name)
                these = self._by_key.get(key)
                if these is None:
                    these = self._by_key[key] = self._stretches(wids, term, name)
                if not found:
                    found = these  # the cached list itself: copied only if another is added
                elif these:
                    if not many:
                        found, many = found.copy(), True
                    found.extend(these)
        if many:
            found.sort()
        return found

    def _stretches(self, wids: tuple[int, ...], term: Term, name: str) -> list[Stretch]:
        field = self.fields[name]
        if len(wids) == 1:
            return [(p, p) for p in field.positions(wids[0])]
        if len(wids) == 2:
            second = set(field.positions(wids[1]))
            return [(p, p + 1) for p in field.positions(wids[0]) if p + 1 in second]
        n = len(wids) - 1
        return [(p, p + n) for p in self._starts(term, name)]

    def _phrase(self, term: Term, name: str) -> bool:
        """Whether the phrase occurs in the field (stops at the first occurrence)."""
        return next(self._starts(term, name), None) is not None

    def _starts(self, term: Term, name: str) -> Iterator[int]:
        """The positions in the field where ``term`` (a word or phrase) begins."""
        present, ids = self.present[name], self.key_ids
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


#: What the inverted index is keyed by: a word, or a phrase of two words (found from the
#: text's adjacent word pairs, so that a two-word phrase costs a look-up, like a word).
Key = Word | tuple[Word, Word]


def key_of(term: Term) -> Key:
    """The index key of a word or two-word phrase (longer phrases have none: KeyError)."""
    if len(term.words) == 1:
        return term.words[0]
    if len(term.words) == 2:
        return (term.words[0], term.words[1])
    raise KeyError(term.source)


def clauses(node: Node) -> list[tuple[Key, ...]]:
    """Key sets of which each must have a key in the text for ``node`` to be true.

    ``a AND (b OR c) AND "d e" AND "f g h"`` gives [(a,), (b, c), ("d e",), (f,), (g,), (h,)];
    NOT, source:, site: and lang: give none (they can be true with no word present).
    """
    if isinstance(node, Term):
        if len(node.words) <= 2:
            return [(key_of(node),)]
        return [(word,) for word in node.words]
    if isinstance(node, And):
        return [clause for child in node.children for clause in clauses(child)]
    if isinstance(node, Near):
        return clauses(node.left) + clauses(node.right)
    if isinstance(node, Or):
        union: list[Key] = []
        for child in node.children:
            options = clauses(child)
            if not options:
                return []
            best: tuple[Key, ...] = min(options, key=_rarity)
            union.extend(best)
        return [tuple(dict.fromkeys(union))]
    return []


def _rarity(clause: tuple[Key, ...]) -> tuple[int, int, int]:
    """Sort key: the clause likely to be met least (fewest keys and prefixes, long words)."""
    words = [w for key in clause for w in ((key,) if isinstance(key, Word) else key)]
    prefixes = sum(word.how == "prefix" for word in words)
    return (len(clause), prefixes, -min(len(word.text) for word in words))


def _plain(node: Node) -> bool:
    """A word or two-word phrase anywhere, or an OR of such: true when one key is present."""
    if isinstance(node, Or):
        return all(_plain(child) for child in node.children)
    return isinstance(node, Term) and len(node.words) <= 2 and node.fields == ANYWHERE


def _keys(node: Node) -> Iterator[Key]:
    """The keys of a plain node."""
    if isinstance(node, Term):
        yield key_of(node)
    elif isinstance(node, Or):
        for child in node.children:
            yield from _keys(child)


def _terms(node: Node) -> Iterator[Term]:
    """Every term of a tree."""
    if isinstance(node, Term):
        yield node
    elif isinstance(node, Not):
        yield from _terms(node.child)
    elif isinstance(node, And | Or):
        for child in node.children:
            yield from _terms(child)
    elif isinstance(node, Near):
        yield from _terms(node.left)
        yield from _terms(node.right)


def _direct(node: Node) -> bool:
    """True when the query holds exactly when its clauses are met and no NOT key is present.

    ``a (b OR "c d") -e -(f OR g)``: plain parts and NOTs of plain parts, under one AND.
    """
    if isinstance(node, And):
        return all(
            _plain(child.child if isinstance(child, Not) else child) for child in node.children
        )
    return _plain(node)


def _flat_side(node: Node) -> bool:
    """A NEAR side that is a term or an OR of terms (its matches are simple stretches)."""
    if isinstance(node, Or):
        return all(_flat_side(child) for child in node.children)
    return isinstance(node, Term)


#: A list of integers per id, as numpy arrays: offsets (``[i]`` to ``[i + 1]``) into a flat
#: array of the values.
Postings = tuple["NDArray[np.intp]", "NDArray[np.intp]"]


def _postings(lists: dict[int, list[int]], count: int) -> Postings:
    """The lists of ids ``0 … count - 1`` (absent: empty) as offsets and a flat array."""
    import numpy as np

    ordered = [lists.get(i, ()) for i in range(count)]
    offsets = np.zeros(count + 1, np.intp)
    np.cumsum(np.fromiter(map(len, ordered), np.intp, count), out=offsets[1:])
    flat = np.fromiter(chain.from_iterable(ordered), np.intp, int(offsets[-1]))
    return offsets, flat


def _gather(postings: Postings, ids: NDArray[np.intp]) -> NDArray[np.intp]:
    """The values listed for each of ``ids``, concatenated (in numpy: no Python loop)."""
    import numpy as np

    offsets, flat = postings
    starts = offsets[ids]
    lengths = offsets[ids + 1] - starts
    ends = lengths.cumsum()
    total = int(ends[-1]) if len(ends) else 0
    # output position i, in the run of ids[j], reads flat[starts[j] + i - (ends[j] - lengths[j])]
    values: NDArray[np.intp] = flat[(starts - ends + lengths).repeat(lengths) + np.arange(total)]
    return values


class Matcher:
    """Many parsed queries, ready to be matched against texts; safe to share between threads.

    A query is evaluated only when each of its clauses has a key in the text (met clauses
    counted per query); a direct query (``a ("b c" OR d) -e``) then matches outright unless a
    NOT key is present.
    """

    def __init__(self, nodes: Sequence[Node]) -> None:
        import numpy as np  # here, not at the top: `import monitor.match` stays light

        #: The queries' trees as parsed (``why`` shows their terms as each query wrote them).
        self.nodes = self.written = tuple(nodes)
        self.analyzer = Analyzer()
        #: Every word and two-word phrase of the queries → its key id.
        self.key_ids: dict[Key, int] = {}
        ids = self.key_ids
        clause_query: list[int] = []
        need: list[int] = []
        key_clauses: dict[int, list[int]] = defaultdict(list)
        key_kills: dict[int, list[int]] = defaultdict(list)
        direct: list[int] = []
        for q, node in enumerate(self.nodes):
            found = clauses(node)
            need.append(len(found))
            for clause in found:
                cid = len(clause_query)
                clause_query.append(q)
                for key in clause:
                    key_clauses[ids.setdefault(key, len(ids))].append(cid)
            if _direct(node):
                direct.append(q)
                for child in node.children if isinstance(node, And) else ():
                    if isinstance(child, Not):
                        for key in _keys(child.child):
                            key_kills[ids.setdefault(key, len(ids))].append(q)
            for term in _terms(node):
                for word in term.words:
                    ids.setdefault(word, len(ids))
                if len(term.words) == 2:
                    ids.setdefault(key_of(term), len(ids))
        #: Per key id (offsets into a flat array, numpy): the clauses it meets, then for each
        #: direct query it excludes (by a NOT) that query's number plus the clause count. So
        #: one look-up marks both in an array of the clauses and then the queries (see
        #: :meth:`matching_set`).
        clause_count = len(clause_query)
        for kid, queries in key_kills.items():
            key_clauses[kid].extend(clause_count + q for q in queries)
        self.postings = _postings(key_clauses, len(ids))
        #: Per clause, its query; per query, its clause count and whether it is direct.
        self.clause_query = np.array(clause_query, np.intp)
        self.need = np.array(need, np.intp)
        self.direct = np.zeros(len(self.nodes), bool)
        self.direct[direct] = True
        #: (text, how, id) of each word; (first word id, second word id) → the phrase's id.
        self.words = [(key.text, key.how, kid) for key, kid in ids.items() if isinstance(key, Word)]
        self.pairs = {
            (ids[key[0]], ids[key[1]]): kid for key, kid in ids.items() if not isinstance(key, Word)
        }
        #: Per query that needs one, its compiled test, made the first time it is needed.
        self.tests: dict[int, Test] = {}
        #: Per query with a test, the ids of the words whose positions it may need.
        self.located: dict[int, frozenset[int]] = {}
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
                    index = WordIndex(self.words, self.analyzer, plan, self.pairs)
                    self._plans[plan] = index
        return index

    def doc(
        self, title: str, text: str, source: str = "", url: str = "", lang: str | None = None
    ) -> Doc:
        return Doc(self, plan_for(lang), title, text, (source, url, lang or ""))

    def matching(self, doc: Doc) -> list[int]:
        """Ids of the queries that match ``doc``, in order."""
        return sorted(self.matching_set(doc))

    def matching_set(self, doc: Doc) -> set[int]:
        """Ids of the queries that match ``doc``.

        The met clauses are marked in an array and counted per query with numpy, with no
        Python code per key, clause or query: a query with as many met clauses as it has
        (queries with none included) is a candidate. Direct candidates match unless a NOT key
        excludes them; only the others run their test. #6: at 10,000 rules (2,400 met
        clauses, 360 candidates per article body) the same steps done with sets and a Counter
        in C took 0.46 ms per body, in numpy 0.13 ms.
        """
        import numpy as np

        keys = doc.keys
        clause_count = len(self.clause_query)
        met = np.zeros(clause_count + len(self.need), bool)
        met[_gather(self.postings, keys)] = True
        counts = np.bincount(
            self.clause_query[met[:clause_count].nonzero()[0]], minlength=len(self.need)
        )
        ready = counts == self.need
        ready &= ~met[clause_count:]  # excluded by a NOT key (direct queries only)
        candidates = ready.nonzero()[0]
        direct = self.direct[candidates]
        matched = set(candidates[direct].tolist())
        others = candidates[~direct].tolist()
        if others:
            tests = [self.tests.get(q) or self._test(q) for q in others]
            doc.locate(set().union(*map(self.located.__getitem__, others)))
            matched.update(q for q, test in zip(others, tests, strict=True) if test(doc))
        return matched

    def _test(self, q: int) -> Test:
        self.located[q] = _located(self.nodes[q], self.key_ids)
        test = self.tests[q] = _compile(self.nodes[q], self.key_ids)
        return test

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


def _compile(node: Node, ids: dict[Key, int]) -> Test:
    """A query as nested closures: much faster to evaluate than walking the tree."""
    if isinstance(node, Term):
        if len(node.words) > 2:
            wids = [ids[word] for word in node.words]
            term = node
            return lambda doc: all(w in doc.anywhere for w in wids) and doc.atom(term)
        kid = ids[key_of(node)]
        if node.fields == ANYWHERE:
            return lambda doc: kid in doc.anywhere
        name = node.fields[0]
        return lambda doc: kid in doc.present[name]
    if isinstance(node, Not):
        test = _compile(node.child, ids)
        return lambda doc: not test(doc)
    if isinstance(node, Or) and any(_plain(child) for child in node.children):
        # the plain words in one set test; phrases, NEARs… only when that fails
        words = frozenset(
            ids[key] for child in node.children if _plain(child) for key in _keys(child)
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
    if isinstance(node, Near) and _flat_side(node.left) and _flat_side(node.right):
        return _compile_near(node, ids)
    atom = node
    return lambda doc: doc.atom(atom)


#: A term of a NEAR side, ready to look up: its key id (None for 3+ words), word ids, fields.
SideTerm = tuple[int | None, tuple[int, ...], tuple[str, ...], Term]


def _compile_near(node: Near, ids: dict[Key, int]) -> Test:
    """A NEAR of terms or OR-groups of terms: position look-ups, nothing walked per text."""
    names = fields_of(node)
    distance = node.distance

    def side(part: Node) -> list[SideTerm]:
        terms = [part] if isinstance(part, Term) else list(_terms(part))
        return [
            (
                ids[key_of(t)] if len(t.words) <= 2 else None,
                tuple(ids[w] for w in t.words),
                t.fields,
                t,
            )
            for t in terms
        ]

    left, right = side(node.left), side(node.right)

    def test_near(doc: Doc) -> bool:
        for name in names:
            found = doc.side(left, name)
            if found and near_any(found, doc.side(right, name), distance):
                return True
        return False

    return test_near


def _located(node: Node, ids: dict[Key, int]) -> frozenset[int]:
    """The ids of the words whose positions the test of ``node`` may ask for: those of NEAR
    terms and of phrases of three words or more (the other terms are key look-ups)."""
    if isinstance(node, Near) or (isinstance(node, Term) and len(node.words) > 2):
        return frozenset(ids[word] for term in _terms(node) for word in term.words)
    if isinstance(node, Not):
        return _located(node.child, ids)
    if isinstance(node, And | Or):
        return frozenset().union(*(_located(child, ids) for child in node.children))
    return frozenset()


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
        return 1 if len(node.words) <= 2 else 20
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


# -- DESIGN §8: compile_queries ---------------------------------------------------------------


class CompiledQueries:
    """Queries compiled together; ``match(text, lang)`` gives the indices of those matching."""

    def __init__(self, queries: Sequence[str], nodes: Sequence[Node]) -> None:
        self.queries = tuple(queries)
        self._nodes = tuple(nodes)
        self._warnings: tuple[RuleError, ...] | None = None
        self._matcher = Matcher(nodes)

    @property
    def warnings(self) -> tuple[RuleError, ...]:
        """Queries that can never match, or match without any of their terms; worked out
        when first asked (#6: matching never needs them, and they were a tenth of the
        compile time of 10,000 rules)."""
        if self._warnings is None:
            found: list[RuleError] = []
            seen: set[str] = set()
            for i, (query, node) in enumerate(zip(self.queries, self._nodes, strict=True)):
                if query not in seen:
                    seen.add(query)
                    found.extend(RuleError(f"query[{i}]", what) for what in lint(node))
            self._warnings = tuple(found)
        return self._warnings

    def match(self, text: str, lang: str | None = None) -> set[int]:
        """Indices of the queries matching ``text``, an article body without a title."""
        return self._matcher.matching_set(self._matcher.doc("", text, lang=lang))

    def __len__(self) -> int:
        return len(self.queries)

    def __repr__(self) -> str:
        return f"<CompiledQueries queries={len(self.queries)} warnings={len(self.warnings)}>"


def compile_queries(queries: list[str]) -> CompiledQueries:
    """Parse and index ``queries``; a bad one raises RuleError naming ``query[<index>]``.

    Each distinct query text is parsed once.
    """
    parsed: dict[str, Node] = {}
    nodes: list[Node] = []
    for i, query in enumerate(queries):
        node = parsed.get(query)
        if node is None:
            try:
                node = parsed[query] = parse(query)
            except QuerySyntaxError as exc:
                raise query_error(f"query[{i}]", query, exc) from exc
        nodes.append(node)
    return CompiledQueries(queries, nodes)


def query_error(where: str, query: str, exc: QuerySyntaxError) -> RuleError:
    """A RuleError for a query given on its own: line and column inside the query."""
    line, column, text = locate(query, exc.pos)
    at = f"column {column}" if "\n" not in query.strip("\n") else f"line {line}, column {column}"
    return RuleError(where, f"{at}: {exc.what}", excerpt=excerpt(text, column))
