"""Main-text quality and speed on the public article-extraction benchmark (issue #5).

    .venv/bin/python bench/extract_bench.py [DATA_DIR] [--only NAME,…] [--rounds N]
        [--dump DIR]

DATA_DIR is a checkout of the benchmark (181 gzipped pages in html/, ground-truth.json and
its scorer evaluate.py); default ../shared/data/aeb relative to the repository. The data
is read in place, never copied.

Scoring is the benchmark's own: evaluate.py is imported from DATA_DIR, each page is scored
with its ``string_shingle_matching`` (4-word shingles, tp/fp/fn normalised per page) and the
totals with its ``metrics_from_tp_fp_fns`` (mean precision, mean recall, F1 of the two
means), exactly as ``evaluate.py`` scores a file in output/.

Every extractor gets the same input, the page decoded as UTF-8 (as the benchmark's README
says the files are), and is timed on the extraction call only, after a warm-up; pages per
second is the best of ``--rounds`` passes over all pages (the machine is shared: the best
pass is the one least disturbed). Peers need the ``bench`` extra: ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "aeb"
sys.path.insert(0, str(REPO))  # run as a script from a checkout

Extractor = Callable[[str, str], str]
WARM_UP = (
    "<html><body><article><h1>Warm-up</h1>"
    + "<p>A paragraph of plain English prose, long enough to be an article's text.</p>" * 8
    + "</article></body></html>"
)


def load_scorer(data: Path) -> ModuleType:
    """The benchmark's evaluate.py, imported from the data directory."""
    spec = importlib.util.spec_from_file_location("aeb_evaluate", data / "evaluate.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"{data / 'evaluate.py'}: cannot import the benchmark's scorer")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_pages(data: Path) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    truth: dict[str, dict[str, Any]] = json.loads(
        (data / "ground-truth.json").read_text(encoding="utf-8")
    )
    pages = {
        key: gzip.decompress((data / "html" / f"{key}.html.gz").read_bytes()).decode("utf-8")
        for key in truth
    }
    return pages, truth


def ours(html: str, url: str) -> str:
    from monitor.clean import extract

    return extract(html, url).text


def trafilatura_with(**options: Any) -> Extractor:
    def run(html: str, url: str) -> str:
        import trafilatura

        return trafilatura.extract(html, url=url, **options) or ""

    return run


def readability(html: str, url: str) -> str:
    import lxml.html
    from readability import Document  # type: ignore[import-untyped, unused-ignore]

    summary = Document(html, url=url).summary(html_partial=True)
    fragment: Any = lxml.html.fromstring(summary) if summary.strip() else None
    return str(fragment.text_content()) if fragment is not None else ""


def newspaper(html: str, url: str) -> str:
    from newspaper import Article  # type: ignore[import-untyped, unused-ignore]

    article = Article(url or "https://example.org/")
    article.download(input_html=html)
    try:
        article.parse()
    except ImportError:  # its Korean and Chinese tokenisers need the optional nltk: no text
        return ""
    return str(article.text or "")


EXTRACTORS: dict[str, Extractor] = {
    "monitor.clean": ours,
    "trafilatura": trafilatura_with(),
    "trafilatura precision": trafilatura_with(favor_precision=True),
    "trafilatura fast": trafilatura_with(fast=True),
    "readability-lxml": readability,
    "newspaper4k": newspaper,
}


def warm_up(names: list[str], pages: dict[str, str]) -> None:
    """Imports and lazily loaded models (a language model, stop lists) before any clock runs,
    for every extractor: a daemon loads them once, and what one loads (trafilatura's jusText
    stop lists serve ours and trafilatura's calls) must not be charged to whichever runs
    first. A page that declares no language makes ours load its detector."""
    from trafilatura.external import jt_stoplist_init

    jt_stoplist_init()
    for name in names:
        for html in [WARM_UP, *list(pages.values())[:3]]:
            EXTRACTORS[name](html, "")


def run(
    name: str, extractor: Extractor, pages: dict[str, str], truth: dict[str, Any], rounds: int
) -> tuple[dict[str, str], float]:
    best = float("inf")
    outputs: dict[str, str] = {}
    for _ in range(rounds):
        started = time.perf_counter()
        outputs = {key: extractor(html, truth[key].get("url", "")) for key, html in pages.items()}
        best = min(best, time.perf_counter() - started)
    return outputs, len(pages) / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--only", default="", help="comma-separated extractor names")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--dump", type=Path, help="write each extractor's output here")
    args = parser.parse_args(argv)
    scorer = load_scorer(args.data)
    pages, truth = load_pages(args.data)
    wanted = [n.strip() for n in args.only.split(",") if n.strip()] or list(EXTRACTORS)
    warm_up(wanted, pages)
    rows = []
    for name in wanted:
        outputs, speed = run(name, EXTRACTORS[name], pages, truth, args.rounds)
        scores = [
            scorer.string_shingle_matching(true=truth[key].get("articleBody", ""), pred=text)
            for key, text in outputs.items()
        ]
        metrics = scorer.metrics_from_tp_fp_fns(scores)
        rows.append((name, metrics["f1"], metrics["precision"], metrics["recall"], speed))
        if args.dump:
            args.dump.mkdir(parents=True, exist_ok=True)
            out = {key: {"articleBody": text} for key, text in outputs.items()}
            (args.dump / f"{name.replace(' ', '_')}.json").write_text(
                json.dumps(out, ensure_ascii=False), encoding="utf-8"
            )
        print(
            f"{name:<24} F1 {rows[-1][1]:.4f}  P {rows[-1][2]:.4f}  R {rows[-1][3]:.4f}  "
            f"{speed:6.1f} pages/s",
            file=sys.stderr,
        )
    base = next((row[4] for row in rows if row[0] == "trafilatura"), None)
    print(f"{'extractor':<24} {'F1':>6} {'P':>6} {'R':>6} {'pages/s':>8} {'speed':>6}")
    for name, f1, precision, recall, speed in rows:
        ratio = f"{speed / base:5.2f}x" if base else "-"
        print(f"{name:<24} {f1:6.3f} {precision:6.3f} {recall:6.3f} {speed:8.1f} {ratio:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
