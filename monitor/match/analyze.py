"""Text analysis for matching: tokenise, fold, stem — the same way for articles and queries.

Tokens are maximal runs of letters, digits and combining marks (any script; ``_`` is not a
letter). Everything else separates tokens, so:

- ``Nur-Sultan``, ``Алма-Ата``, ``COVID-19`` are two tokens each; a query word with a hyphen
  becomes a phrase of its parts, so ``Nur-Sultan`` matches "Nur-Sultan", "Nur–Sultan" and
  "Nur Sultan", and ``Sultan`` alone matches them too.
- After an apostrophe (``'``, ``’``, ``ʼ``) a lone ``s`` ending the word is the English
  possessive or "is" and is dropped: "Kazakhstan's" is the one token "Kazakhstan" (its span
  leaves out the "'s"), so the query ``Kazakhstan`` matches it and ``"Kazakhstan's economy"``
  matches "Kazakhstan economy". Other apostrophes split: "d'Estaing" is "d" + "Estaing".
- Numbers are tokens like words: ``2024``; "10,000" is "10" + "000" (a query ``10,000`` is a
  phrase of both).

Folding makes matching case-, accent- and width-insensitive: NFKD (full-width "Ｋ" → "K",
"ﬁ" → "fi"), casefold ("ß" → "ss", "Σ" → "σ"), then accents dropped ("é" → "e", "ё" → "е",
Russian stress marks disappear). One exception: the breve on Cyrillic и and у stays, so "й"
and "ў" remain letters of their own. Folding "й" to "и" would change what the Russian stemmer
sees ("и" is a vowel to it, "й" is not): "смертной" → "смертн" but "смертнои" → "смертно",
and the query ``смертная казнь`` would stop finding "смертной казни". Kazakh letters (ә ғ қ ң
ө ұ ү һ і) have no decomposition and stay as they are. Marks of Indic scripts are kept: they
are letters' vowels, not accents.

Stemming uses Snowball (PyStemmer) on the folded token. Which stemmer depends on the token's
script and the article's language: the article's language when Snowball has a stemmer for it
and that language is written in the token's script (a French article's Latin words use the
French stemmer, its Cyrillic quotes the Russian one); otherwise the script's default (Latin →
English, Cyrillic → Russian, Greek → Greek, Armenian → Armenian); other scripts are not
stemmed. Kazakh has no Snowball stemmer, so Kazakh words use the Russian one.
"""  # noqa: RUF002 -- the examples are the non-ASCII letters this module is about

from __future__ import annotations

import bisect
import re
import threading
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from operator import itemgetter

import Stemmer

#: Characters that join a word and a trailing possessive "s".
APOSTROPHES = "'\u2019\u02bc"
#: Invisible characters that may sit inside a word (soft hyphen, zero-width (non-)joiner).
_INVISIBLE = "\u00ad\u200c\u200d"
#: Combining marks that are accents (dropped by folding); other scripts' marks are kept.
_ACCENTS = re.compile(
    "[\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u064b-\u065f\u0670"
    "\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f" + _INVISIBLE + "]"
)
_BREVE = "\u0306"
_KEEP_BREVE = re.compile("([иу])\u0306")
_BREVE_MARK = "\ue000"  # a private-use stand-in while accents are stripped

#: ISO 639-1 code → (Snowball algorithm, scripts it stems).
LANGUAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ar": ("arabic", ("arab",)),
    "ca": ("catalan", ("latn",)),
    "cs": ("czech", ("latn",)),
    "da": ("danish", ("latn",)),
    "de": ("german", ("latn",)),
    "el": ("greek", ("grek",)),
    "en": ("english", ("latn",)),
    "eo": ("esperanto", ("latn",)),
    "es": ("spanish", ("latn",)),
    "et": ("estonian", ("latn",)),
    "eu": ("basque", ("latn",)),
    "fa": ("persian", ("arab",)),
    "fi": ("finnish", ("latn",)),
    "fr": ("french", ("latn",)),
    "ga": ("irish", ("latn",)),
    "hi": ("hindi", ("deva",)),
    "hu": ("hungarian", ("latn",)),
    "hy": ("armenian", ("armn",)),
    "id": ("indonesian", ("latn",)),
    "it": ("italian", ("latn",)),
    "lt": ("lithuanian", ("latn",)),
    "nb": ("norwegian", ("latn",)),
    "ne": ("nepali", ("deva",)),
    "nl": ("dutch", ("latn",)),
    "nn": ("norwegian", ("latn",)),
    "no": ("norwegian", ("latn",)),
    "pl": ("polish", ("latn",)),
    "pt": ("portuguese", ("latn",)),
    "ro": ("romanian", ("latn",)),
    "ru": ("russian", ("cyrl",)),
    "sr": ("serbian", ("cyrl", "latn")),
    "st": ("sesotho", ("latn",)),
    "sv": ("swedish", ("latn",)),
    "ta": ("tamil", ("taml",)),
    "tr": ("turkish", ("latn",)),
    "yi": ("yiddish", ("hebr",)),
}
#: The stemmer for a script when the article's language does not say.
DEFAULT_STEMMERS: dict[str, str] = {
    "latn": "english",
    "cyrl": "russian",
    "grek": "greek",
    "armn": "armenian",
}
_SCRIPT_RANGES = (
    ("\u0250", "latn"),  # exclusive upper bounds, in order
    ("\u0370", ""),
    ("\u0400", "grek"),
    ("\u0530", "cyrl"),
    ("\u0590", "armn"),
    ("\u0600", "hebr"),
    ("\u0700", "arab"),
    ("\u0900", ""),
    ("\u0980", "deva"),
    ("\u0b80", ""),
    ("\u0c00", "taml"),
)

#: A stemming plan: (script, Snowball algorithm) pairs, sorted; hashable.
Plan = tuple[tuple[str, str], ...]


@cache
def token_pattern() -> re.Pattern[str]:
    """Group 1 of each match is a token; a possessive "'s" after it is consumed, not kept."""
    marks: list[str] = []
    start = -1
    for cp in range(0x20001):
        is_mark = cp < 0x20000 and unicodedata.category(chr(cp)).startswith("M")
        if is_mark and start < 0:
            start = cp
        elif not is_mark and start >= 0:
            marks.append(f"\\U{start:08x}-\\U{cp - 1:08x}")
            start = -1
    # One character class (\\w plus marks) is as fast as \\w+; "_" is blanked out beforehand.
    word = f"[\\w{''.join(marks)}{_INVISIBLE}]"
    return re.compile(f"({word}+)(?:[{APOSTROPHES}][sS](?!{word}))?")


def tokens(text: str) -> list[str]:
    """The tokens of ``text``, as written."""
    return token_pattern().findall(text.replace("_", " "))


def token_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each token of ``text``, in the order :func:`tokens` gives them."""
    return [found.span(1) for found in token_pattern().finditer(text.replace("_", " "))]


def fold(token: str) -> str:
    """Case-, accent- and width-insensitive form of a token (see the module docstring)."""
    if token.isascii():
        return token.lower()
    text = unicodedata.normalize("NFKD", token).casefold()
    if _BREVE in text:
        text = _KEEP_BREVE.sub(lambda found: found.group(1) + _BREVE_MARK, text)
        text = _ACCENTS.sub("", text).replace(_BREVE_MARK, _BREVE)
    else:
        text = _ACCENTS.sub("", text)
    return unicodedata.normalize("NFC", text)


def script(folded: str) -> str:
    """The script of a folded token, by its first character ("" when not stemmed)."""
    first = folded[:1]
    if not first or first.isdigit():
        return ""
    for bound, name in _SCRIPT_RANGES:
        if first < bound:
            return name
    return ""


@cache
def available() -> frozenset[str]:
    return frozenset(Stemmer.algorithms())


@cache
def plan_for(lang: str | None) -> Plan:
    """Which Snowball stemmer each script uses in an article of language ``lang``."""
    chosen = dict(DEFAULT_STEMMERS)
    code = (lang or "").strip().lower().replace("_", "-").split("-")[0]
    if code in LANGUAGES:
        algorithm, scripts = LANGUAGES[code]
        if algorithm in available():
            for name in scripts:
                chosen[name] = algorithm
    return tuple(sorted(chosen.items()))


@dataclass(slots=True)
class Known:
    """The words met under one plan: token as written → folded form, and → stem.

    Two dictionaries rather than one of pairs, so that a text's words are looked up with
    ``map(dict.__getitem__, …)`` in C. ``folded`` is filled before ``stems``: a token that has
    a stem has its folded form too, whichever thread looks.
    """

    folded: dict[str, str] = field(default_factory=dict)
    stems: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Analyzer:
    """Folds and stems tokens, remembering each result; safe to share between threads.

    Snowball stemmers are not thread-safe, so stemming a new word takes a lock; a word seen
    before is a dictionary look-up. Pickles without its stemmers and memory.
    """

    _known: dict[Plan, Known] = field(default_factory=dict)
    _stemmers: dict[str, Stemmer.Stemmer] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    #: Forget the words of a plan beyond this many (a daemon meets new words forever).
    LIMIT = 200_000

    def __getstate__(self) -> dict[str, object]:
        return {}

    def __setstate__(self, state: dict[str, object]) -> None:
        self._known, self._stemmers, self._lock = {}, {}, threading.Lock()

    def known(self, plan: Plan) -> Known:
        """The words met so far under ``plan``; add to them with :meth:`learn`."""
        known = self._known.get(plan)
        if known is None:
            known = self._known.setdefault(plan, Known())
        return known

    def learn(self, plan: Plan, words: set[str]) -> Known:
        """Fold and stem every token of ``words`` not met before; return what is known."""
        known = self.known(plan)
        new = words.difference(known.stems)
        if new:
            if len(known.stems) + len(new) > self.LIMIT:
                known = self._known[plan] = Known()
                new = words
            tokens = list(new)
            folded = [fold(token) for token in tokens]
            stems = self.stem_many(plan, folded)
            known.folded.update(zip(tokens, folded, strict=True))
            known.stems.update(zip(tokens, stems, strict=True))
        return known

    def stem(self, plan: Plan, folded: str) -> str:
        """The stem of an already folded token under ``plan``."""
        return self.stem_many(plan, [folded])[0]

    def stem_many(self, plan: Plan, folded: list[str]) -> list[str]:
        algorithms = dict(plan)
        out: list[str] = []
        with self._lock:
            for word in folded:
                algorithm = algorithms.get(script(word))
                if algorithm is None:
                    out.append(word)
                    continue
                stemmer = self._stemmers.get(algorithm)
                if stemmer is None:
                    stemmer = self._stemmers[algorithm] = Stemmer.Stemmer(algorithm)
                out.append(stemmer.stemWord(word))
        return out


class FieldText:
    """One field of a text (title or body) tokenised once; word positions found on demand.

    ``folds`` and ``stems`` are the sets of its words' folded forms and stems; positions (for
    phrases, NEAR and spans) are indexed in one pass the first time something asks.
    """

    __slots__ = (
        "_fold_pos",
        "_offsets",
        "_positions",
        "_prefixes",
        "_stem_pos",
        "folds",
        "known",
        "stems",
        "text",
        "tokens",
    )

    def __init__(self, text: str, analyzer: Analyzer, plan: Plan) -> None:
        self.text = text
        self.tokens = tokens(text) if text else []
        types = set(self.tokens)
        self.known = known = analyzer.learn(plan, types)
        self.folds = set(map(known.folded.__getitem__, types))
        self.stems = set(map(known.stems.__getitem__, types))
        self._fold_pos: dict[str, list[int]] = {}
        self._stem_pos: dict[str, list[int]] | None = None
        self._positions: dict[tuple[str, str], list[int]] = {}
        self._prefixes: dict[str, list[str]] = {}
        self._offsets: list[tuple[int, int]] | None = None

    def with_prefix(self, prefix: str) -> list[str]:
        found = self._prefixes.get(prefix)
        if found is None:
            found = self._prefixes[prefix] = [w for w in self.folds if w.startswith(prefix)]
        return found

    def positions(self, word: str, how: str, stem: str) -> list[int]:
        """Where a query word occurs, in order: ``how`` it compares, its ``stem`` here."""
        found = self._positions.get((word, how))
        if found is None:
            found = self._positions[word, how] = self._find(word, how, stem)
        return found

    def _find(self, word: str, how: str, stem: str) -> list[int]:
        if self._stem_pos is None:
            self._index()
        stem_pos, fold_pos = self._stem_pos or {}, self._fold_pos
        if how == "exact":
            return fold_pos.get(word, [])
        if how == "prefix":
            return sorted(p for key in self.with_prefix(word) for p in fold_pos[key])
        found = stem_pos.get(stem, [])
        extra = [*(stem_pos.get(word, ()) if word != stem else ()), *(fold_pos.get(stem, ()))]
        return sorted({*found, *extra}) if extra else found

    def _index(self) -> None:
        """Positions of every stem and folded word: one pass, when a phrase first needs it."""
        stem_pos: dict[str, list[int]] = defaultdict(list)
        fold_pos: dict[str, list[int]] = defaultdict(list)
        folded_of, stem_of = self.known.folded, self.known.stems
        for i, token in enumerate(self.tokens):
            stem_pos[stem_of[token]].append(i)
            fold_pos[folded_of[token]].append(i)
        self._fold_pos = dict(fold_pos)
        self._stem_pos = dict(stem_pos)

    def offsets(self) -> list[tuple[int, int]]:
        if self._offsets is None:
            self._offsets = token_spans(self.text)
        return self._offsets


class WordIndex:
    """Query words by the keys a text's words are looked up with, under one stemming plan.

    A query word (folded) and a text word compare as follows: ``stem`` words match when their
    stems are equal, or when one side's stem is the other's whole folded word (Snowball stems
    unevenly: "казахстан" → "казахста" but "казахстане" → "казахстан"); ``exact`` words when
    the folded words are equal; ``prefix`` words when the folded text word starts with them.
    """

    def __init__(self, words: Sequence[tuple[str, str]], analyzer: Analyzer, plan: Plan) -> None:
        """``words``: (folded text, how) of each query word; its index is its id."""
        stemmed = [text for text, how in words if how == "stem"]
        #: Folded query word → its stem under this plan.
        self.stems = dict(zip(stemmed, analyzer.stem_many(plan, stemmed), strict=True))
        by_stem: dict[str, list[int]] = defaultdict(list)
        by_fold: dict[str, list[int]] = defaultdict(list)
        by_prefix: dict[str, list[int]] = defaultdict(list)
        for wid, (text, how) in enumerate(words):
            if how == "stem":
                stem = self.stems[text]
                by_stem[stem].append(wid)
                by_fold[stem].append(wid)
                if text != stem:
                    by_stem[text].append(wid)
            elif how == "exact":
                by_fold[text].append(wid)
            else:
                by_prefix[text].append(wid)
        self.by_stem, self.by_fold, self.by_prefix = dict(by_stem), dict(by_fold), dict(by_prefix)
        # sets, so that intersecting with a text's words iterates the smaller side
        self.stem_keys, self.fold_keys = set(by_stem), set(by_fold)
        #: (length, the prefixes of that length), to cut each text word to every length once.
        self.prefix_keys = [
            (itemgetter(slice(n)), {prefix for prefix in by_prefix if len(prefix) == n})
            for n in sorted({len(prefix) for prefix in by_prefix})
        ]

    def present(self, field: FieldText) -> set[int]:
        """The ids of the query words that occur in ``field``."""
        found: set[int] = set()
        by_stem, by_fold = self.by_stem, self.by_fold
        for key in field.stems & self.stem_keys:
            found.update(by_stem[key])
        for key in field.folds & self.fold_keys:
            found.update(by_fold[key])
        by_prefix = self.by_prefix
        for cut, keys in self.prefix_keys:
            for key in keys.intersection(map(cut, field.folds)):
                found.update(by_prefix[key])
        return found


#: An occurrence: first and last token position (inclusive), and the term pieces it is made of.
Occ = tuple[int, int, tuple[tuple[int, int], ...]]


def near(left: list[Occ], right: list[Occ], distance: int) -> list[Occ]:
    """Pairs of occurrences, one from each side, apart by at most ``distance`` words."""
    if not left or not right:
        return []
    starts = [occ[0] for occ in right]
    longest = max(occ[1] - occ[0] for occ in right)
    out: set[Occ] = set()
    for a in left:
        lo = bisect.bisect_left(starts, a[0] - distance - 1 - longest)
        hi = bisect.bisect_right(starts, a[1] + distance + 1)
        for b in right[lo:hi]:
            if b[0] > a[1]:
                gap = b[0] - a[1] - 1
            elif a[0] > b[1]:
                gap = a[0] - b[1] - 1
            else:
                continue  # overlapping: the same words cannot be near themselves
            if gap <= distance:
                out.add((min(a[0], b[0]), max(a[1], b[1]), a[2] + b[2]))
    return sorted(out)


# -- hosts, and positions in messages ------------------------------------------------------


def host_key(host: str) -> str:
    """A host name as compared by site:, lower case, IDNA names in their Unicode form."""
    host = host.lower().strip(".")
    if "xn--" in host:
        try:
            return host.encode("ascii").decode("idna")
        except UnicodeError:
            return host
    return host


def locate(text: str, offset: int) -> tuple[int, int, str]:
    """(line, column, that line) of an offset into ``text``; both numbers start at 1."""
    offset = max(0, min(offset, len(text)))
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    line = text[line_start : line_end if line_end >= 0 else len(text)]
    return text.count("\n", 0, offset) + 1, offset - line_start + 1, line


def excerpt(line: str, column: int) -> str:
    """The line and a caret under ``column`` (tabs kept, wide characters counted twice)."""
    import unicodedata

    pad = []
    for char in line[: column - 1]:
        if char == "\t":
            pad.append("\t")
        elif unicodedata.combining(char):
            continue
        else:
            pad.append("  " if unicodedata.east_asian_width(char) in "WF" else " ")
    return f"    {line.rstrip()}\n    {''.join(pad)}^"
