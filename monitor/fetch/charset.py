"""Which character encoding a fetched feed or page is in, decided in a fixed order:

    1. the charset of the Content-Type header, when Python knows it
    2. a byte order mark (UTF-8, UTF-16)
    3. the document's own word: <meta charset>, <meta http-equiv=Content-Type>, <?xml encoding?>
    4. detection on the bytes (charset-normalizer), which tells windows-1251 from KOI8-R
    5. UTF-8

A Russian site that serves windows-1251 without saying so in either place is common; step 4 is
for it. Parsers (lxml, feedparser) are then told the answer, so they do not
guess on their own.
"""

from __future__ import annotations

import codecs
import re

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
#: Where in the document its own declaration is looked for.
HEAD = 16 * 1024
#: How much of the body detection reads: enough words for a confident answer.
SAMPLE = 64 * 1024
#: The legacy encodings detection chooses among: the web's usual single- and multi-byte ones.
#: Unrestricted, charset-normalizer reads a short KOI8-R page as Shift_JIS-2004.
CANDIDATES = [
    "cp1251",
    "koi8_r",
    "koi8_u",
    "cp1252",
    "iso8859_2",
    "cp1250",
    "iso8859_5",
    "cp866",
    "mac_cyrillic",
    "cp1253",
    "cp1254",
    "cp1256",
    "cp1257",
    "gb18030",
    "big5",
    "euc_kr",
    "shift_jis",
    "euc_jp",
]
_XML_DECLARATION = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([\w.:-]+)["']""")
_META_CHARSET = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)


def known(name: str | bytes | None) -> str | None:
    """The codec's canonical name, or None for an empty or unknown one."""
    if not name:
        return None
    text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
    try:
        return codecs.lookup(text.strip()).name
    except LookupError:
        return None


def declared(body: bytes) -> str | None:
    """The encoding the document names itself, in an XML declaration or a <meta> tag."""
    head = body[:HEAD]
    found = _XML_DECLARATION.match(head) or _META_CHARSET.search(head)
    return known(found.group(1)) if found else None


def detect(body: bytes, header: str | None = None) -> str:
    """The encoding of ``body``; ``header`` is the Content-Type's charset, if any."""
    by_header = known(header)
    if by_header:
        return by_header
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name
    by_document = declared(body)
    if by_document:
        # A page saying utf-16 in ASCII bytes is wrong about itself (the HTML standard's rule).
        return "utf-8" if by_document.startswith("utf-16") else by_document
    return guessed(body)


def guessed(body: bytes) -> str:
    """Detection on the bytes: UTF-8 when they are valid UTF-8, else charset-normalizer's best
    guess, else UTF-8."""
    sample = body[:SAMPLE]
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 3:  # only a character cut by the sample's end
            return "utf-8"
    from charset_normalizer import from_bytes

    best = from_bytes(sample, cp_isolation=CANDIDATES).best()
    return (known(best.encoding) if best is not None else None) or "utf-8"
