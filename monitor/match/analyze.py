"""Text analysis for matching: tokenise, fold, stem — the same way for articles and queries.

Tokens are maximal runs of letters, digits and combining marks (any script; ``_`` is not a
letter). Everything else separates tokens, so:

- ``Nur-Sultan``, ``Алма-Ата``, ``COVID-19`` are two tokens each; a query word with a hyphen
  becomes a phrase of its parts, so ``Nur-Sultan`` matches "Nur-Sultan", "Nur–Sultan" and
  "Nur Sultan", and ``Sultan`` alone matches them too.
- After an apostrophe (``'`` or ``’``) a lone ``s`` ending the word is the English
  possessive or "is" and is dropped: "Kazakhstan's" is the one token "Kazakhstan" (its span
  leaves out the "'s"), so the query ``Kazakhstan`` matches it and ``"Kazakhstan's economy"``
  matches "Kazakhstan economy". Other apostrophes split: "d'Estaing" is "d" + "Estaing".
  U+02BC (``ʼ``, the modifier letter apostrophe) is a letter to Unicode, so it stays inside
  the word: "Kazakhstanʼs" is one token, matched by ``Kazakhstanʼs`` or ``Kazakhstan*``.
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
from itertools import chain
from typing import TYPE_CHECKING, Any

import Stemmer

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

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
def _word_class(wide: bool) -> str:
    """The character class of a token's characters: letters, digits, marks, the invisible ones.

    ``wide``: also the combining marks beyond U+FFFF (historic scripts, musical symbols).
    Without them the class compiles to one bitmap and a text is tokenised as fast as with
    ``\\w+``; with them, sre checks each separator against a list of ranges, two times slower
    on article text (#6, bench/match_bench.py): a text gets the wide class only when it has
    characters beyond U+FFFF.
    """
    end = 0x20000 if wide else 0x10000
    marks: list[str] = []
    start = -1
    for cp in range(end + 1):
        is_mark = cp < end and unicodedata.category(chr(cp)).startswith("M")
        if is_mark and start < 0:
            start = cp
        elif not is_mark and start >= 0:
            marks.append(f"\\U{start:08x}-\\U{cp - 1:08x}")
            start = -1
    # "_" is blanked out beforehand.
    return f"[\\w{''.join(marks)}{_INVISIBLE}]"


@cache
def token_pattern(wide: bool = False) -> re.Pattern[str]:
    """Group 1 of each match is a token; a possessive "'s" after it is consumed, not kept.

    ``wide``: see :func:`_word_class`. :func:`token_spans` uses it; :func:`tokens` gives the
    same tokens with the two cheaper patterns of :func:`_split_patterns`.
    """
    word = _word_class(wide)
    return re.compile(f"({word}+)(?:[{APOSTROPHES}][sS](?!{word}))?")


@cache
def _split_patterns(wide: bool) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """A run of token characters; and a possessive "'s" (any apostrophe made ``'``) that
    :func:`token_pattern` would consume after a token, with the "'s" after it if there is
    one, which it would not (after "x's" the next "'s" starts with the "s" of a possessive,
    not a token: "x's's's" is the tokens "x" and "s").

    Blanking the possessives out first and then taking the runs gives :func:`token_pattern`'s
    tokens in 0.88x the time (#6: :func:`tokens` on the aeb bodies, 137 against 155 us a
    body, fastest of 7 interleaved with the bench's floor, which takes 145: the one pattern's
    optional group after each token cost a sixth of it; the blanking is a search for a
    literal ``'``). U+02BC, the modifier letter apostrophe, is a letter, so inside a token: it
    never starts a possessive after one.
    """
    word = _word_class(wide)
    return (
        re.compile(f"{word}+"),
        re.compile(f"'(?<={word}')[sS](?!{word})('[sS](?!{word}))?"),
    )


def _is_wide(text: str) -> bool:
    """Whether ``text`` has characters beyond U+FFFF: UTF-16 takes two units for each of them
    (#6: 4 us on an article body, a search for them 9 us)."""
    return not text.isascii() and len(text.encode("utf-16-le", "surrogatepass")) > 2 * len(text)


def tokens(text: str) -> list[str]:
    """The tokens of ``text``, as written."""
    runs, possessive = _split_patterns(_is_wide(text))
    text = text.replace("_", " ").replace("\u2019", "'")
    if "'" in text:
        text = possessive.sub(r" \1", text)
    return runs.findall(text)


def token_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each token of ``text``, in the order :func:`tokens` gives them."""
    pattern = token_pattern(_is_wide(text))
    return [found.span(1) for found in pattern.finditer(text.replace("_", " "))]


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


@dataclass(slots=True)
class Memo:
    """What a WordIndex remembers of the text words met (as written), filled as texts come.

    Shared by the threads matching texts. Words are added under the WordIndex's lock, a
    word's code last, so a thread that finds a code finds everything else about the word;
    the pairs are added by any thread, each the same whichever thread adds it. A reset
    replaces the whole Memo (a thread still reading the old one keeps it).
    """

    #: Text word → what it matches, as one int: 0 for nothing (most words); else where the
    #: ids of the query words it matches sit in ``ids`` (start << 24 | count << 2), plus 2
    #: if it can start a two-word phrase and 1 if it can end one. Most words cost one
    #: look-up, of the small int 0, and a text's codes are one numpy array (#6).
    codes: dict[str, int] = field(default_factory=dict)
    #: The ids of the query words each text word matches, one run per word that matches any.
    ids: Ids = field(default_factory=lambda: Ids())
    #: The start of a word's run in ``ids`` → that run, for the pairs below.
    hits: dict[int, tuple[int, ...]] = field(default_factory=dict)
    #: A pair of adjacent text words, one that can start a two-word phrase then one that can
    #: end one, by the starts of their runs (the first's << 32 | the second's) → the ids of
    #: the two-word phrases the pair is (mostly none).
    pairs: dict[int, tuple[int, ...]] = field(default_factory=dict)


#: Where a word's run starts, in its code; its length; its phrase roles.
_START, _COUNT, _ROLES = 24, (1 << 22) - 1, 3


class Ids:
    """A numpy array of ints with room to grow at the end.

    One thread at a time appends (under the WordIndex's lock), past the end of what the
    codes published so far use, so a thread reading those is not disturbed; when there is no
    room left the appending thread fills a larger copy, which the Memo then holds.
    """

    __slots__ = ("array", "used")

    def __init__(self, room: int = 4096) -> None:
        import numpy as np

        self.array = np.zeros(room, np.int64)
        #: Entries in use; the first is not used, so that no run starts at 0.
        self.used = 1

    def extend(self, values: list[int]) -> Ids:
        """Append ``values``; returns self, or a larger copy with them in it."""
        import numpy as np

        used = self.used + len(values)
        grown = self
        if used > len(self.array):
            grown = Ids(max(used, 2 * len(self.array)))
            grown.array[: self.used] = self.array[: self.used]
        grown.array[self.used : used] = np.fromiter(values, np.int64, len(values))
        grown.used = used
        return grown


def gather(flat: NDArray[np.int64], starts: NDArray[Any], lengths: NDArray[Any]) -> Any:
    """The runs ``flat[start:start + length]``, concatenated, in numpy: no Python loop."""
    import numpy as np

    ends = lengths.cumsum()
    total = int(ends[-1]) if len(ends) else 0
    # output position i, in the run j, reads flat[starts[j] + i - (ends[j] - lengths[j])]
    return flat[(starts - ends + lengths).repeat(lengths) + np.arange(total)]


class WordIndex:
    """Query words by the keys a text's words are looked up with, under one stemming plan.

    A query word (folded) and a text word compare as follows: ``stem`` words match when their
    stems are equal, or when one side's stem is the other's whole folded word (Snowball stems
    unevenly: "казахстан" → "казахста" but "казахстане" → "казахстан"); ``exact`` words when
    the folded words are equal; ``prefix`` words when the folded text word starts with them.

    Which query words a text word matches is worked out once per distinct word as written and
    remembered (:class:`Memo`), so that a text costs a look-up per word: folding, stemming
    and prefix cuts run only for words never met before (#6: the look-ups with stems and
    prefixes per text were most of the time per article at 10,000 rules). Likewise the
    two-word phrases a pair of adjacent words makes. A text's words become numbers, and the
    rest is numpy: the query words they match, the pairs that may be phrases (:meth:`keys`).
    """

    #: Forget the words (and word pairs) met beyond this many (a daemon meets new words
    #: forever).
    LIMIT = 200_000

    def __init__(
        self,
        words: Sequence[tuple[str, str, int]],
        analyzer: Analyzer,
        plan: Plan,
        pairs: dict[tuple[int, int], int] | None = None,
    ) -> None:
        """``words``: (folded text, how, id) of each query word; ``pairs``: two-word phrases,
        (id of the first word, id of the second) → the phrase's id."""
        self.analyzer, self.plan = analyzer, plan
        #: (first word id, second word id) → phrase id; the first and the second word ids.
        self.pairs = pairs or {}
        self.firsts = frozenset(first for first, _ in self.pairs)
        self.seconds = frozenset(second for _, second in self.pairs)
        #: One more than the largest id of a query word or phrase.
        self.size = 1 + max(chain((wid for _, _, wid in words), self.pairs.values()), default=-1)
        stemmed = [text for text, how, _ in words if how == "stem"]
        stems = dict(zip(stemmed, analyzer.stem_many(plan, stemmed), strict=True))
        by_stem: dict[str, list[int]] = defaultdict(list)
        by_fold: dict[str, list[int]] = defaultdict(list)
        by_prefix: dict[str, list[int]] = defaultdict(list)
        for text, how, wid in words:
            if how == "stem":
                stem = stems[text]
                by_stem[stem].append(wid)
                by_fold[stem].append(wid)
                if text != stem:
                    by_stem[text].append(wid)
            elif how == "exact":
                by_fold[text].append(wid)
            else:
                by_prefix[text].append(wid)
        self.by_stem, self.by_fold, self.by_prefix = dict(by_stem), dict(by_fold), dict(by_prefix)
        self.prefix_lengths = sorted({len(prefix) for prefix in by_prefix})
        self._memo = Memo()
        self._lock = threading.Lock()

    def keys(self, words: list[str]) -> tuple[NDArray[np.intp], NDArray[np.int64], Any]:
        """The ids of the query words and two-word phrases that ``words`` (a text's tokens)
        have, sorted; and the ids of the query words each token matches, one run per token in
        order, with the runs' lengths (for positions).

        One look-up per token gives its code (see :class:`Memo`); then numpy: the query words
        of every token marked in an array of the ids, and the adjacent pairs whose first word
        can start a phrase and whose second can end one found with array operations (#6:
        building a text's set of words, the union of their query words and a pass over the
        tokens for the pairs cost twice as much at 10,000 rules, in the bench's interleaving).
        """
        import numpy as np

        memo = self._memo
        if not words:
            return np.zeros(0, np.intp), np.zeros(0, np.int64), np.zeros(0, np.int64)
        try:
            codes = np.fromiter(map(memo.codes.__getitem__, words), np.int64, len(words))
        except KeyError:
            memo = self._learn(set(words))
            codes = np.fromiter(map(memo.codes.__getitem__, words), np.int64, len(words))
        ids = memo.ids.array  # read after the codes: it has every run they point to
        starts, lengths = codes >> _START, codes >> 2 & _COUNT
        hits = gather(ids, starts, lengths)
        found = np.zeros(self.size, bool)
        found[hits] = True
        if self.pairs:
            roles = codes & _ROLES
            at = (roles[:-1] >> 1 & roles[1:]).nonzero()[0]
            if len(at):
                pairs = starts[at] << 32 | starts[at + 1]
                found[self.phrases(memo, set(pairs.tolist()))] = True
        return found.nonzero()[0], hits, lengths

    def _learn(self, words: set[str]) -> Memo:
        """Work out what the words of ``words`` not met before match, and remember it."""
        with self._lock:
            memo = self._memo
            new = words.difference(memo.codes)
            if not new:
                return memo
            if len(memo.codes) + len(new) > self.LIMIT:
                memo, new = Memo(), words
            known = self.analyzer.learn(self.plan, new)
            folded, stems = known.folded, known.stems
            firsts, seconds = self.firsts, self.seconds
            hits = memo.hits
            codes: dict[str, int] = {}
            flat: list[int] = []
            start = memo.ids.used
            for word in new:
                found = self._ids(folded[word], stems[word])
                if not found:
                    codes[word] = 0
                    continue
                hits[start] = found
                roles = 2 * (not firsts.isdisjoint(found)) + (not seconds.isdisjoint(found))
                codes[word] = start << _START | len(found) << 2 | roles
                flat.extend(found)
                start += len(found)
            memo.ids = memo.ids.extend(flat)
            memo.codes.update(codes)  # last: a thread that finds a word's code finds the rest
            self._memo = memo
            return memo

    def phrases(self, memo: Memo, codes: set[int]) -> list[int]:
        """The ids of the two-word phrases that the word pairs ``codes`` (numbered as in
        :attr:`Memo.pairs`) make, each pair's worked out once and remembered (#6: a loop over
        a text's ~100 candidate pairs per article cost more than the look-ups)."""
        known = memo.pairs
        new = codes.difference(known)
        if new:
            if len(known) + len(new) > self.LIMIT:
                known = memo.pairs = {}
                new = codes
            hits, pairs = memo.hits, self.pairs
            for code in new:
                after = hits[code & 0xFFFFFFFF]
                known[code] = tuple(
                    phrase
                    for a in hits[code >> 32]
                    for b in after
                    if (phrase := pairs.get((a, b))) is not None
                )
        return list(chain.from_iterable(map(known.__getitem__, codes)))

    def _ids(self, folded: str, stem: str) -> tuple[int, ...]:
        found: set[int] = set()
        found.update(self.by_stem.get(stem, ()))
        found.update(self.by_fold.get(folded, ()))
        by_prefix = self.by_prefix
        for n in self.prefix_lengths:
            if n > len(folded):
                break
            found.update(by_prefix.get(folded[:n], ()))
        return tuple(sorted(found))

    def field(self, text: str) -> FieldText:
        return FieldText(text, self)


class FieldText:
    """One field of a text (title or body) tokenised once, and the query words found in it.

    ``keys`` are the ids of the query words and two-word phrases it has (numpy, for deciding),
    ``present`` the same as a set, made when something asks (a test of a candidate); their
    positions (for phrases, NEAR and spans) are found when something asks, from the query
    words of each token: a NEAR needs a few of the hundreds of query words a text has at
    10,000 rules (#6).
    """

    __slots__ = (
        "_hits",
        "_lengths",
        "_offsets",
        "_present",
        "_size",
        "_where",
        "keys",
        "text",
        "tokens",
    )

    def __init__(self, text: str, index: WordIndex) -> None:
        self.text = text
        self.tokens = tokens(text) if text else []
        self.keys, self._hits, self._lengths = index.keys(self.tokens)
        self._size = index.size
        self._present: set[int] | None = None
        self._where: dict[int, list[int]] = {}
        self._offsets: list[tuple[int, int]] | None = None

    @property
    def present(self) -> set[int]:
        """The ids of the query words and two-word phrases found in this field."""
        if self._present is None:
            self._present = set(self.keys.tolist())
        return self._present

    def positions(self, wid: int) -> list[int]:
        """The token positions where query word ``wid`` occurs, in order."""
        found = self._where.get(wid)
        if found is None:
            self.locate({wid})
            found = self._where[wid]
        return found

    def locate(self, wids: set[int]) -> None:
        """Find the positions of the query words ``wids`` at once: the tokens' query words
        that are among them picked with numpy, then grouped per query word.

        :meth:`positions` then answers for them (#6: at 10,000 dense rules the NEAR
        candidates of an article need ~70 query words; a pass over the tokens picking the
        text words that match them, from per-word sets of the text words matching each query
        word, took most of the tests' time).
        """
        wids = wids.difference(self._where)
        if not wids:
            return
        import numpy as np

        wanted = np.zeros(self._size, bool)
        wanted[list(wids)] = True
        hits = self._hits
        picked = wanted[hits].nonzero()[0]
        where: dict[int, list[int]] = {wid: [] for wid in wids}
        # the token of each entry of hits: its run's number
        token_of = np.arange(len(self._lengths)).repeat(self._lengths)
        for wid, at in zip(hits[picked].tolist(), token_of[picked].tolist(), strict=True):
            where[wid].append(at)
        self._where.update(where)

    def offsets(self) -> list[tuple[int, int]]:
        if self._offsets is None:
            self._offsets = token_spans(self.text)
        return self._offsets


#: First and last token position (inclusive) of a word or phrase found in a text.
Stretch = tuple[int, int]
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


def near_any(left: list[Stretch], right: list[Stretch], distance: int) -> bool:
    """Whether a stretch of ``left`` and one of ``right`` (each sorted) are apart by at most
    ``distance`` words, without overlapping: :func:`near`'s test, stopping at the first pair."""
    if not left or not right:
        return False
    if len(left) * len(right) <= 16:
        # the usual case (a word's 2 occurrences in an article at 10,000 rules, #6): all pairs,
        # with no list of starts to build first
        for a, z in left:
            for b, y in right:
                if (b > z and b - z - 1 <= distance) or (a > y and a - y - 1 <= distance):
                    return True
        return False
    if len(left) > len(right):
        left, right = right, left  # the relation is symmetric: bisect into the longer side
    starts = [first for first, _ in right]
    longest = max(last - first for first, last in right)
    for a, z in left:
        lo = bisect.bisect_left(starts, a - distance - 1 - longest)
        hi = bisect.bisect_right(starts, z + distance + 1)
        for b, y in right[lo:hi]:
            if (b > z and b - z - 1 <= distance) or (a > y and a - y - 1 <= distance):
                return True
    return False


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
