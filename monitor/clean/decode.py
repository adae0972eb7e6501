"""Bytes → HTML text, and the verdict whether a body is HTML at all.

Decoding follows what the page says about itself, most specific first:

    byte-order mark → <meta charset> / <?xml encoding?> → the HTTP header's charset
    → valid UTF-8 → charset-normalizer's best guess

A body that is empty, binary (a PDF, an image, NUL bytes) or text without markup is refused
with a reason rather than fed to the extractor, which would turn junk into "text".
"""

from __future__ import annotations

import codecs
import re

BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
#: File signatures of formats servers hand out in place of an article page.
MAGIC = (
    (b"%PDF-", "PDF"),
    (b"PK\x03\x04", "ZIP archive or office document"),
    (b"\xd0\xcf\x11\xe0", "office document"),
    (b"{\\rtf", "RTF"),
    (b"\x89PNG", "image"),
    (b"GIF8", "image"),
    (b"\xff\xd8\xff", "image"),
    (b"RIFF", "media"),
    (b"ID3", "media"),
    (b"OggS", "media"),
    (b"\x1f\x8b", "gzip data"),
)
#: NUL bytes allowed in the first KiB: a stray one is a CMS bug in a real page; many mean
#: binary data (or UTF-16 without a byte-order mark, which no site sends).
MAX_NULS = 4
#: How far into the body a charset declaration counts (the HTML standard prescans 1024 bytes;
#: real pages put long scripts and comments first, so look a little further).
PRESCAN = 4096
_META_CHARSET = re.compile(
    rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE
)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""")
#: An HTML element's start tag or an HTML doctype: what makes a text HTML.
_HTML_TAG = re.compile(
    r"<(?:!doctype\s+html|html|head|body|title|meta|frameset|main|article|section|div|p|h[1-6]"
    r"|table|ul|ol|span|a|br|img|script|style|link|header|footer|nav)[\s/>]",
    re.IGNORECASE,
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f]")
_XML_ROOT = re.compile(r"<(rss|feed|rdf:rdf|urlset|sitemapindex|opml|svg)[\s>]", re.IGNORECASE)


def sniff_binary(data: bytes) -> str | None:
    """Why these bytes are not a web page ("not HTML (PDF)"), or None when they may be one."""
    head = data[:1024].lstrip()
    for magic, kind in MAGIC:
        if head.startswith(magic):
            return f"not HTML ({kind})"
    if _bom(data) is None and head.count(b"\x00") > MAX_NULS:
        return "not HTML (binary data)"
    return None


def decode_html(data: bytes, header_charset: str | None = None) -> str:
    """The body as text; see the module docstring for the order of evidence."""
    bom = _bom(data)
    if bom is not None:
        marker, encoding = bom
        return data[len(marker) :].decode(encoding, errors="replace")
    for declared in (_declared(data), _known(header_charset)):
        if declared is None:
            continue
        if declared != "utf-8":  # single-byte and CJK codecs: trust the page, browsers do
            return data.decode(declared, errors="replace")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            continue  # declared UTF-8 but is not: the next clue, or a guess
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _guess(data)


def check_html(text: str) -> str | None:
    """Why this text is not an HTML document ("empty page", "not HTML…"), or None."""
    head = text[:65536]
    if not head.strip():
        return "empty page"
    if _control_ratio(head[:4096]) > 0.05:
        return "not HTML (binary data)"
    if head.lstrip().startswith("<?xml") and _XML_ROOT.search(head[:4096]):
        return "not HTML (XML)"
    if not _HTML_TAG.search(head):
        return "not HTML (no markup)"
    return None


def _bom(data: bytes) -> tuple[bytes, str] | None:
    for marker, encoding in BOMS:
        if data.startswith(marker):
            return marker, encoding
    return None


def _declared(data: bytes) -> str | None:
    head = data[:PRESCAN]
    found = _XML_ENCODING.match(head) or _META_CHARSET.search(head)
    if found is None:
        return None
    encoding = _known(found.group(1).decode("ascii"))
    # A page that reached us as ASCII-compatible bytes cannot be UTF-16, whatever it says
    # (the HTML standard's rule, for copies saved by editors that keep the old declaration).
    if encoding is not None and encoding.startswith(("utf-16", "utf-32")):
        return "utf-8"
    return encoding


def _known(label: str | None) -> str | None:
    """A codec name Python knows for ``label``, with the HTML standard's aliases applied."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None
    # Browsers decode these labels as their Windows supersets; so must we, or "smart
    # quotes" in pages labelled Latin-1 come out as C1 control characters.
    return {"iso8859-1": "cp1252", "ascii": "cp1252"}.get(name, name)


def _guess(data: bytes) -> str:
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        return data.decode("utf-8", errors="replace")
    return str(best)


def _control_ratio(text: str) -> float:
    if not text:
        return 0.0
    bad = sum(1 for ch in text if (ch < " " and ch not in "\t\n\r\f") or ch == "\ufffd")
    return bad / len(text)


def strip_controls(text: str) -> str:
    """``text`` without C0 control characters (NUL and the like), which lxml refuses."""
    return _CONTROLS.sub("", text)
