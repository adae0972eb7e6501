"""Rules engine speed against naive regexes, a multi-pattern peer and the floor (issue #6).

    .venv/bin/python bench/match_bench.py [DATA_DIR] [--profile dense|sparse|both]
        [--sizes 100,1000,10000] [--seed 6] [--rounds 3] [--naive-articles 20]
        [--sparse-share 0.005] [--json FILE] [--baseline FILE] [--pin [--lower-floors]]

DATA_DIR is the article-extraction benchmark (default ../shared/data/aeb): its
ground-truth.json holds the real article bodies of its 181 pages, which are the texts matched
here (read in place). For each size a rule set is GENERATED with a fixed seed: single words,
implicit AND, OR-groups, phrases (word pairs), NOT, prefixes and NEAR/n. Two profiles, both
run by default:

- dense: every word is a body word, drawn from those in 2-25% of the bodies, and every
  phrase a word pair that occurs in two bodies or more: ~3% of the rules match each body (320
  of 10,000), and the peer runs at ~30x the floor. The case of hundreds of rules per article.
- sparse: each word (and phrase) is drawn as in dense with probability ``--sparse-share``,
  else from the words (adjacent word pairs) of the same 181 pages that no body has: menus,
  teasers of other articles, comments (a pair's words are such words or words dense would
  draw). Real monitoring rules mostly name things a given article lacks, and each matches
  a small share of articles; a word drawn from 181 bodies is in one of them, so such words
  come from the pages around the bodies. The share is tuned to the PEER, not to our
  engine: issue #6 measured its best multi-pattern peer at 5x the floor at 10,000
  exact-token rules. In this bench at 10,000 rules (2 cores, load 1.4-4.7) the peer ran at
  5.5x the floor with no body word at all (its own cost: tokenising, joining, the
  automaton's pass, the rules its prefix terms touch), 5.1x at a share of 0.005, 6.3x at
  0.01 and at 0.02; dense puts it at ~32x. 0.005 is the one measured nearest 5x; any share
  up to 0.01 is within the noise of it.

In one run, per profile and size:

- ours: ``monitor.match.compile_queries(rules)`` (DESIGN §8), compile time and time per
  article of ``.match(body)``;
- naive: each rule as a tree of Python ``re`` patterns (one per term) searched in the
  lower-cased body, AND/OR/NOT short-circuited in Python; on every k-th body only
  (``--naive-articles``), as it takes seconds per body at 10,000 rules (naive ÷ ours is
  taken on those bodies: their lengths are not the average's);
- peer: pyahocorasick (the ``bench`` extra) over all terms of all rules as token strings, on
  the lower-cased tokens joined by spaces; then only the rules with a term found are
  evaluated (term sets and, for NEAR, token positions);
- floor: lower-casing and tokenising the body, nothing matched.

Times are CPU time (``time.process_time``: the machine is shared, and waiting for a core is
not the engine's cost), measured interleaved: each body is run by floor, ours and peer in turn,
so that all three see the same load, and per body the fastest of ``--rounds`` passes counts,
after a warm-up pass (which fills our caches of stems and of the query words each text word
matches, as a running daemon has them filled); naive runs one pass, not warmed up (it has
nothing to warm). The load average at the start and end of the run is printed.

Agreement. The peers compare words exactly (a word matches the same token, no stemming);
ours stems. So ours is also run on the same rules with every word made exact (``=word``,
``="a b"``; prefixes unchanged): that must give the peers' matches on every body, and the
differences between ours stemmed and ours exact are the matches stemming adds or removes,
reported with counts and examples.

Targets and floors. The issue's targets (at 10,000 rules: >= 100x faster than naive, within
3x of the floor, compile under 2 s; per article < 2x from 100 to 10,000 rules) are reported
met or missed per profile. Separately, the bounds pinned under "match" in ``--baseline``
(default bench/baseline.json: ratios and agreement counts of a past run, with a margin) are
checked, ok or FAILED each; any FAILED makes the exit status 1. ``--pin`` writes this run's
figures there as the new bounds; a bound looser than the pinned one (a lower floor) is kept
as it was unless ``--lower-floors`` is given too.
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import html
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "aeb"
sys.path.insert(0, str(REPO))  # run as a script from a checkout
sys.path.insert(0, str(REPO / "bench"))  # bench/baseline.py, beside this script

import baseline  # noqa: E402

#: The peers' and the floor's tokeniser: word characters; a possessive "'s" is dropped, as ours
#: drops it (so that both sides count the same words between NEAR terms).
TOKEN = re.compile(r"(\w+)(?:['\u2019\u02bc]s(?!\w))?")
#: Between the words of a phrase, for the naive regexes.
GAP = r"(?:['\u2019\u02bc]s(?!\w))?\W+"

# -- rules: generated from the bodies' vocabulary ---------------------------------------------


@dataclass(frozen=True)
class T:
    """A term: words (exact) or a prefix."""

    words: tuple[str, ...]
    prefix: bool = False


#: A rule as a tree: ("term", T) | ("and", [..]) | ("or", [..]) | ("not", x) | ("near", a, b, n)
Tree = tuple[Any, ...]


def load_bodies(data: Path) -> list[str]:
    truth = json.loads((data / "ground-truth.json").read_text(encoding="utf-8"))
    return [str(page["articleBody"]) for _, page in sorted(truth.items())]


def load_pages(data: Path) -> list[str]:
    """The visible text of the benchmark's pages (scripts, styles and tags stripped)."""
    texts = []
    for path in sorted((data / "html").glob("*.html.gz")):
        page = gzip.decompress(path.read_bytes()).decode("utf-8", "replace")
        page = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", page)
        texts.append(html.unescape(re.sub(r"(?s)<[^>]*>", " ", page)))
    return texts


class Vocabulary:
    def __init__(self, bodies: Sequence[str], pages: Sequence[str] = ()) -> None:
        df: Counter[str] = Counter()
        pairs: Counter[tuple[str, str]] = Counter()
        for body in bodies:
            toks = TOKEN.findall(body.lower())
            df.update(set(toks))
            pairs.update(set(pairwise(toks)))
        n = len(bodies)

        def good(word: str) -> bool:
            return word.isalpha() and len(word) >= 4 and 2 <= df[word] <= n // 4

        self.common = sorted(w for w in df if good(w) and df[w] >= 10)
        self.rare = sorted(w for w in df if good(w) and df[w] < 10)
        self.pairs = sorted(
            p for p, count in pairs.items() if count >= 2 and good(p[0]) and good(p[1])
        )
        # the pages' words and adjacent word pairs that no body has (the sparse profile's)
        page_words: set[str] = set()
        page_pairs: set[tuple[str, str]] = set()
        for page in pages:
            toks = TOKEN.findall(page.lower())
            page_words.update(toks)
            page_pairs.update(pairwise(toks))

        def absent(word: str) -> bool:
            return word.isalpha() and len(word) >= 4 and word not in df

        self.absent = sorted(w for w in page_words if absent(w))
        # a pair no body has, of words no body has or that dense draws from (so no "with this")
        self.absent_pairs = sorted(
            p for p in page_pairs if p not in pairs and all(absent(w) or good(w) for w in p)
        )

    def word(self, rng: random.Random, share: float = 1.0) -> str:
        """A body word (half common, half rare), or with probability 1 - ``share`` a word no
        body has; ``share`` 1 draws exactly as before the sparse profile existed."""
        if share < 1 and rng.random() >= share:
            return rng.choice(self.absent)
        return rng.choice(self.common if rng.random() < 0.5 else self.rare)

    def pair(self, rng: random.Random, share: float = 1.0) -> tuple[str, str]:
        if share < 1 and rng.random() >= share:
            return rng.choice(self.absent_pairs)
        return rng.choice(self.pairs)


def generate(vocab: Vocabulary, count: int, seed: int, share: float = 1.0) -> list[Tree]:
    """``count`` rules; ``share``: the probability that a word or phrase is the bodies'."""
    rng = random.Random(seed)

    def word() -> Tree:
        return ("term", T((vocab.word(rng, share),)))

    def phrase() -> Tree:
        return ("term", T(vocab.pair(rng, share)))

    def prefix() -> Tree:
        w = vocab.word(rng, share)
        return ("term", T((w[: max(4, len(w) - 3)],), prefix=True))

    def any_term() -> Tree:
        return rng.choice([word, word, word, phrase, prefix])()

    def group(k: int) -> Tree:
        return ("or", [any_term() for _ in range(k)])

    templates: list[Callable[[], Tree]] = [
        word,
        lambda: ("and", [word(), word()]),
        lambda: ("and", [group(3), word()]),
        lambda: ("and", [phrase(), ("not", word())]),
        lambda: ("and", [prefix(), group(2)]),
        lambda: (
            "near",
            word(),
            rng.choice([word, phrase, lambda: group(2)])(),
            rng.randint(3, 10),
        ),
        lambda: ("and", [group(3), ("or", [word(), prefix()]), ("not", word())]),
    ]
    weights = [10, 15, 20, 10, 10, 15, 20]
    return [rng.choices(templates, weights)[0]() for _ in range(count)]


def render(tree: Tree, exact: bool = False) -> str:
    """A rule tree in our query language; ``exact``: every word as =word."""
    kind = tree[0]
    if kind == "term":
        term: T = tree[1]
        text = " ".join(term.words) + ("*" if term.prefix else "")
        if len(term.words) > 1:
            text = f'"{text}"'
        return f"={text}" if exact and not term.prefix else text
    if kind == "and":
        return " ".join(render(child, exact) for child in tree[1])
    if kind == "or":
        return "(" + " OR ".join(render(child, exact) for child in tree[1]) + ")"
    if kind == "not":
        return "-" + render(tree[1], exact)
    return f"{render(tree[1], exact)} NEAR/{tree[3]} {render(tree[2], exact)}"


def terms_of(tree: Tree) -> list[T]:
    kind = tree[0]
    if kind == "term":
        return [tree[1]]
    if kind in ("and", "or"):
        return [t for child in tree[1] for t in terms_of(child)]
    if kind == "not":
        return terms_of(tree[1])
    return terms_of(tree[1]) + terms_of(tree[2])


def positive_terms(tree: Tree) -> list[T]:
    kind = tree[0]
    if kind == "not":
        return []
    if kind in ("and", "or"):
        return [t for child in tree[1] for t in positive_terms(child)]
    return terms_of(tree)


# -- the floor ----------------------------------------------------------------------------------


def floor(body: str) -> int:
    return len(TOKEN.findall(body.lower()))


# -- naive: one regex per term, the rule's logic in Python --------------------------------------


def term_regex(term: T) -> str:
    words = [re.escape(w) for w in term.words]
    return r"(?<!\w)" + GAP.join(words) + (r"\w*" if term.prefix else r"(?!\w)")


def side_regex(tree: Tree) -> str:
    if tree[0] == "term":
        return term_regex(tree[1])
    return "(?:" + "|".join(side_regex(child) for child in tree[1]) + ")"


Check = Callable[[str], bool]


def naive_check(tree: Tree) -> Check:
    kind = tree[0]
    if kind in ("term", "near"):
        if kind == "term":
            pattern = term_regex(tree[1])
        else:
            a, b, n = side_regex(tree[1]), side_regex(tree[2]), tree[3]
            between = rf"(?:{GAP}\w+){{0,{n}}}{GAP}"
            pattern = f"{a}{between}{b}|{b}{between}{a}"
        search = re.compile(pattern).search
        return lambda text: search(text) is not None
    if kind == "not":
        inner = naive_check(tree[1])
        return lambda text: not inner(text)
    checks = [naive_check(child) for child in tree[1]]
    if kind == "and":
        return lambda text: all(check(text) for check in checks)
    return lambda text: any(check(text) for check in checks)


class Naive:
    def __init__(self, trees: Sequence[Tree]) -> None:
        self.checks = [naive_check(tree) for tree in trees]

    def match(self, body: str) -> set[int]:
        text = body.lower()
        return {i for i, check in enumerate(self.checks) if check(text)}


# -- peer: Aho-Corasick over all terms, then only the touched rules -----------------------------


class Peer:
    """pyahocorasick over every term of every rule, then the rules with a term found."""

    def __init__(self, trees: Sequence[Tree]) -> None:
        import ahocorasick

        self.automaton = ahocorasick.Automaton()
        self.ids: dict[T, int] = {}
        for tree in trees:
            for term in terms_of(tree):
                if term not in self.ids:
                    tid = self.ids[term] = len(self.ids)
                    key = " " + " ".join(term.words) + ("" if term.prefix else " ")
                    found = self.automaton.get(key, None)
                    entry = (found or []) + [(tid, len(term.words), term.prefix)]
                    self.automaton.add_word(key, entry)
        self.automaton.make_automaton()
        self.rules_of: dict[int, list[int]] = defaultdict(list)
        for i, tree in enumerate(trees):
            for tid in {self.ids[term] for term in positive_terms(tree)}:
                self.rules_of[tid].append(i)
        self.checks = [self._compile(tree) for tree in trees]

    def _compile(self, tree: Tree) -> Callable[[dict[int, list[int]]], bool]:
        kind = tree[0]
        if kind == "term":
            tid = self.ids[tree[1]]
            return lambda found: tid in found
        if kind == "not":
            inner = self._compile(tree[1])
            return lambda found: not inner(found)
        if kind == "near":
            left, right = self._occ(tree[1]), self._occ(tree[2])
            n = tree[3]

            def near(found: dict[int, list[int]]) -> bool:
                a, b = left(found), right(found)
                if not a or not b:
                    return False
                starts = [occ[0] for occ in b]
                for first, last in a:
                    lo = bisect.bisect_left(starts, first - n - 4)
                    for s, e in b[lo:]:
                        if s > last + n + 1:
                            break
                        if (s > last and s - last - 1 <= n) or (first > e and first - e - 1 <= n):
                            return True
                return False

            return near
        checks = [self._compile(child) for child in tree[1]]
        if kind == "and":
            return lambda found: all(check(found) for check in checks)
        return lambda found: any(check(found) for check in checks)

    def _occ(self, tree: Tree) -> Callable[[dict[int, list[int]]], list[tuple[int, int]]]:
        terms = [tree[1]] if tree[0] == "term" else [child[1] for child in tree[1]]
        spans = [(self.ids[t], len(t.words) - 1) for t in terms]
        return lambda found: sorted((p, p + k) for tid, k in spans for p in found.get(tid, ()))

    def match(self, body: str) -> set[int]:
        toks = TOKEN.findall(body.lower())
        text = " " + " ".join(toks) + " "
        starts = list(accumulate([len(tok) + 1 for tok in toks], initial=0))
        found: dict[int, list[int]] = defaultdict(list)
        for end, entries in self.automaton.iter(text):
            for tid, n, prefix in entries:
                # the token holding the term's last character; a term's first token n-1 before
                last = bisect.bisect_right(starts, end - (0 if prefix else 1)) - 1
                found[tid].append(last - n + 1)
        touched = {i for tid in found for i in self.rules_of.get(tid, ())}
        checks = self.checks
        return {i for i in touched if checks[i](found)}


# -- running ----------------------------------------------------------------------------------


def interleaved(
    engines: dict[str, Callable[[str], Any]], bodies: Sequence[str], rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[Any]]]:
    """CPU seconds on each body of each engine, measured INTERLEAVED: every body is run by each
    engine in turn (the order rotating per round), so that all of them see the same load at
    nearly the same moment (#6: a floor measured apart varied 0.16-0.80 ms with the load).
    Per body and engine the fastest of ``rounds`` passes counts (a spike of load hits one
    pass, not all), after a warm-up pass (ours fills its caches of stems and of the query
    words each text word matches, as a running daemon has them filled). Also the results of
    each engine's last pass."""
    names = list(engines)
    for body in bodies:
        for name in names:
            engines[name](body)
    best = {name: [float("inf")] * len(bodies) for name in names}
    results: dict[str, list[Any]] = {name: [None] * len(bodies) for name in names}
    clock = time.process_time
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for d, body in enumerate(bodies):
            for name in order:
                run = engines[name]
                start = clock()
                got = run(body)
                took = clock() - start
                results[name][d] = got
                if took < best[name][d]:
                    best[name][d] = took
    return best, results


def one_pass(run: Callable[[str], set[int]], bodies: Sequence[str]) -> tuple[float, list[Any]]:
    """CPU seconds per body of one pass, not warmed up (naive has nothing to warm)."""
    start = time.process_time()
    results = [run(body) for body in bodies]
    return (time.process_time() - start) / len(bodies), results


def differences(
    a: list[set[int]], b: list[set[int]], rules: Sequence[str], bodies: Sequence[int]
) -> dict[str, Any]:
    only_a = [(d, r) for d, x, y in zip(bodies, a, b, strict=True) for r in sorted(x - y)]
    only_b = [(d, r) for d, x, y in zip(bodies, a, b, strict=True) for r in sorted(y - x)]
    return {
        "only_first": len(only_a),
        "only_second": len(only_b),
        "examples_first": [{"body": d, "rule": rules[r]} for d, r in only_a[:3]],
        "examples_second": [{"body": d, "rule": rules[r]} for d, r in only_b[:3]],
    }


def stemming_examples(
    stemmed: list[set[int]], exact: list[set[int]], trees: Sequence[Tree], bodies: Sequence[str]
) -> list[dict[str, str]]:
    """For a few rules that stemming made match: the rule, and body words its words found."""
    from monitor.match.analyze import Analyzer, fold, plan_for, tokens

    analyzer, plan = Analyzer(), plan_for(None)
    out: list[dict[str, str]] = []
    seen: set[int] = set()
    for d, (x, y) in enumerate(zip(stemmed, exact, strict=True)):
        for r in sorted(x - y):
            if r in seen or len(out) >= 5:
                continue
            seen.add(r)
            words = {w for t in terms_of(trees[r]) if not t.prefix for w in t.words}
            stems = {analyzer.stem(plan, w): w for w in words}
            body_words = {fold(tok) for tok in tokens(bodies[d])}
            found = sorted(
                f"{w}→{stems[analyzer.stem(plan, w)]}"
                for w in body_words - words
                if analyzer.stem(plan, w) in stems
            )
            out.append({"rule": render(trees[r]), "body": str(d), "by_stem": ", ".join(found[:4])})
    return out


def run_size(
    bodies: list[str],
    vocab: Vocabulary,
    size: int,
    seed: int,
    rounds: int,
    every: int,
    share: float = 1.0,
) -> dict[str, Any]:
    from monitor.match import compile_queries

    trees = generate(vocab, size, seed, share)
    rules = [render(tree) for tree in trees]
    exact_rules = [render(tree, exact=True) for tree in trees]

    start = time.process_time()
    ours = compile_queries(rules)
    compile_s = time.process_time() - start
    ours_exact = compile_queries(exact_rules)
    start = time.process_time()
    peer = Peer(trees)
    peer_compile_s = time.process_time() - start
    naive = Naive(trees)

    sample = list(range(0, len(bodies), every))
    sampled = [bodies[d] for d in sample]
    per_body, got = interleaved(
        {"floor": floor, "ours": ours.match, "peer": peer.match}, bodies, rounds
    )
    t_floor, t_ours, t_peer = (
        statistics.mean(per_body[name]) for name in ("floor", "ours", "peer")
    )
    # naive against ours on the same bodies (the sample's lengths differ from the average)
    t_ours_sampled = statistics.mean(per_body["ours"][d] for d in sample)
    got_ours, got_peer = got["ours"], got["peer"]
    t_naive, got_naive = one_pass(naive.match, sampled)
    got_exact = [ours_exact.match(body) for body in bodies]
    everything = list(range(len(bodies)))
    return {
        "rules": size,
        "seconds_per_article": {
            "ours": t_ours,
            "ours_on_naive_sample": t_ours_sampled,
            "naive": t_naive,
            "peer": t_peer,
            "floor": t_floor,
        },
        "ours_vs_floor": t_ours / t_floor,
        "naive_vs_ours": t_naive / t_ours_sampled,
        "ours_vs_peer": t_ours / t_peer,
        "peer_vs_floor": t_peer / t_floor,
        "compile_seconds": {"ours": compile_s, "peer": peer_compile_s},
        "matches_per_article": {
            "ours": statistics.mean(map(len, got_ours)),
            "ours_exact": statistics.mean(map(len, got_exact)),
            "peer": statistics.mean(map(len, got_peer)),
        },
        "naive_articles": len(sample),
        "agreement": {
            "ours_exact_vs_peer": differences(got_exact, got_peer, exact_rules, everything),
            "ours_exact_vs_naive": differences(
                [got_exact[d] for d in sample], got_naive, exact_rules, sample
            ),
            "peer_vs_naive": differences(
                [got_peer[d] for d in sample], got_naive, exact_rules, sample
            ),
            "stemming_ours_vs_ours_exact": differences(got_ours, got_exact, rules, everything),
            "stemming_examples": stemming_examples(got_ours, got_exact, trees, bodies),
        },
    }


# -- the targets, and the floors pinned in the baseline -------------------------------

#: Issue #6's targets, at the largest size (10,000 rules) and from the smallest to the largest.
TARGETS = {
    "naive_vs_ours": ("min", 100.0),
    "ours_vs_floor": ("max", 3.0),
    "compile_seconds": ("max", 2.0),
    "growth": ("max", 2.0),
}
DEFAULT_BASELINE = baseline.DEFAULT
#: Timing bounds pinned this much looser than measured: the same code measured 5.7-6.2x the
#: floor at 10,000 dense rules in runs minutes apart at load 1-3 (#6).
MARGIN = 1.3
#: Compile time is CPU seconds, not a ratio to a peer in the same run: 0.67-1.25 s for the
#: same 10,000 sparse rules in runs at load 0-4.7 (#6).
COMPILE_MARGIN = 2.0


def summary(results: list[dict[str, Any]]) -> dict[str, float]:
    """The figures the targets and the baseline speak of, by name: "<size>/<figure>" per size,
    and "growth/<smallest>-<largest>" (time per article, largest size over smallest)."""
    out: dict[str, float] = {}
    for result in results:
        size = result["rules"]
        for name in ("ours_vs_floor", "naive_vs_ours", "ours_vs_peer", "peer_vs_floor"):
            out[f"{size}/{name}"] = result[name]
        out[f"{size}/compile_seconds"] = result["compile_seconds"]["ours"]
        for pair in ("ours_exact_vs_peer", "ours_exact_vs_naive", "peer_vs_naive"):
            found = result["agreement"][pair]
            out[f"{size}/{pair}_differences"] = found["only_first"] + found["only_second"]
    if len(results) > 1:
        first, last = results[0]["seconds_per_article"], results[-1]["seconds_per_article"]
        out[f"growth/{results[0]['rules']}-{results[-1]['rules']}"] = last["ours"] / first["ours"]
    return out


def targets(figures: dict[str, float], sizes: list[int]) -> dict[str, dict[str, Any]]:
    """Issue #6's targets, met or not (those the sizes run allow to judge)."""
    out: dict[str, dict[str, Any]] = {}
    for name, (how, bound) in TARGETS.items():
        key = "growth/100-10000" if name == "growth" else f"10000/{name}"
        if key not in figures:
            continue
        value = figures[key]
        met = value >= bound if how == "min" else value < bound
        out[key] = {"value": value, how: bound, "met": met}
    return out


def kinds_of(figures: dict[str, float]) -> dict[float, dict[str, baseline.Kind]]:
    """The figures to pin, by the margin they get: timing ratios ``MARGIN``, compile time at
    10,000 rules ``COMPILE_MARGIN``, agreement counts none (the rules are generated with a
    fixed seed: the counts are exact)."""
    out: dict[float, dict[str, baseline.Kind]] = {MARGIN: {}, COMPILE_MARGIN: {}, 1.0: {}}
    for key in figures:
        name = key.rsplit("/", 1)[-1]
        if name.endswith("_differences"):
            out[1.0][key] = "max"
        elif name == "compile_seconds":
            if "/10000/" in key:  # smaller sizes': mostly building the parser, once
                out[COMPILE_MARGIN][key] = "max"
        elif name in ("ours_vs_floor", "ours_vs_peer") or "/growth/" in key:
            out[MARGIN][key] = "max"
        elif name == "naive_vs_ours":
            out[MARGIN][key] = "min"
    return out


PROFILES = ("dense", "sparse")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--profile", choices=[*PROFILES, "both"], default="both")
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--naive-articles", type=int, default=20, help="bodies the naive approach runs on"
    )
    parser.add_argument(
        "--sparse-share",
        type=float,
        default=0.005,
        help="sparse profile: the share of rule words drawn from the bodies (tuned to put "
        "the peer near issue #6's 5x the floor at 10,000 rules)",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--baseline", type=Path, default=DEFAULT_BASELINE)
    parser.add_argument("--pin", action="store_true", help="pin this run's figures as bounds")
    parser.add_argument(
        "--lower-floors", action="store_true", help="with --pin: also loosen pinned bounds"
    )
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    bodies = load_bodies(args.data)
    profiles = PROFILES if args.profile == "both" else (args.profile,)
    vocab = Vocabulary(bodies, load_pages(args.data) if "sparse" in profiles else ())
    shares = {"dense": 1.0, "sparse": args.sparse_share}
    every = max(1, len(bodies) // args.naive_articles)
    sizes = [int(s) for s in args.sizes.split(",")]
    out: dict[str, Any] = {"bodies": len(bodies), "seed": args.seed, "profiles": {}}
    figures: dict[str, dict[str, float]] = {}
    for profile in profiles:
        results = []
        for size in sizes:
            result = run_size(bodies, vocab, size, args.seed, args.rounds, every, shares[profile])
            results.append(result)
            t = result["seconds_per_article"]
            print(
                f"{profile} {size:>6} rules: ours {t['ours'] * 1e3:.3f} ms/article"
                f" ({result['ours_vs_floor']:.2f}x floor, {result['naive_vs_ours']:.0f}x faster"
                f" than naive, {result['ours_vs_peer']:.2f}x peer; peer at"
                f" {result['peer_vs_floor']:.2f}x floor);"
                f" compile {result['compile_seconds']['ours']:.2f} s;"
                f" {result['matches_per_article']['ours']:.1f} matches/article",
                file=sys.stderr,
            )
        figures[profile] = summary(results)
        met = targets(figures[profile], sizes)
        growth = f"growth/{sizes[0]}-{sizes[-1]}"
        if growth in figures[profile]:
            print(
                f"{profile}: ours per article, {sizes[-1]} vs {sizes[0]} rules:"
                f" {figures[profile][growth]:.2f}x",
                file=sys.stderr,
            )
        for key, target in met.items():
            bound = f">= {target['min']:g}" if "min" in target else f"< {target['max']:g}"
            print(
                f"{profile}: issue #6 target {key} {bound}: {target['value']:.3g},"
                f" {'met' if target['met'] else 'NOT met'}",
                file=sys.stderr,
            )
        out["profiles"][profile] = {
            "share_of_body_words": shares[profile],
            "results": results,
            "figures": figures[profile],
            "targets": met,
        }
    load = {"before": load_before, "after": os.getloadavg()}
    out["load_average"] = load
    print(
        f"load average (1, 5, 15 min): before {load['before']}, after {load['after']}",
        file=sys.stderr,
    )
    # the baseline names a figure "<profile>/<size>/<figure>" or "<profile>/growth/<a>-<b>"
    flat = {
        f"{profile}/{key}": value for profile in profiles for key, value in figures[profile].items()
    }
    if args.pin:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        about = (
            "bench/match_bench.py checks these on every run (issue #6); --pin tightens them and"
            f" only --pin --lower-floors loosens one. Ratios of a run with a margin of {MARGIN}x,"
            f" compile seconds at 10,000 rules {COMPILE_MARGIN}x, agreement counts (matches two"
            f" engines differ on) as they were. Last pinned {time.strftime('%Y-%m-%d')} at"
            f" {commit}, load {load['before'][0]:.2f}-{load['after'][0]:.2f}."
        )
        for margin, kinds in kinds_of(flat).items():
            for line in baseline.pin(
                "match",
                flat,
                kinds,
                margin=margin,
                about=about,
                lower=args.lower_floors,
                path=args.baseline,
            ):
                print(f"baseline: {line}", file=sys.stderr)
    lines, failed = baseline.check("match", flat, args.baseline)
    for line in lines:
        print(f"baseline: {line}", file=sys.stderr)
    print(
        f"baseline {args.baseline}: {len(lines)} bounds checked, {failed} failed", file=sys.stderr
    )
    out["baseline"] = {"checked": lines, "failed": failed}
    text = json.dumps(out, ensure_ascii=False, indent=1)
    if args.json:
        args.json.write_text(text, encoding="utf-8")
    print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
