"""The URL an article is stored under: the same page always gets the same string.

    canonical_url("HTTPS://WWW.Example.org:443/news/a?id=7&utm_source=rss#top")
        → "https://www.example.org/news/a?id=7"

Only what cannot change the page is touched: scheme and host case, a default port, the
fragment and tracking parameters. The path and the other parameters stay byte for byte, so
the result is still a working link (digests and feeds point readers at it).
"""

from __future__ import annotations

from urllib.parse import unquote_plus, urljoin, urlsplit, urlunsplit

#: Query parameters that only say how a reader arrived (campaigns, click ids, share links).
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "twclid",
        "li_fat_id",
        "igshid",
        "mc_cid",
        "mc_eid",
        "yclid",
        "ysclid",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "ref_src",
        "ref_url",
        "oly_anon_id",
        "oly_enc_id",
        "vero_conv",
        "vero_id",
        "wt.mc_id",
        "at_medium",
        "at_campaign",
    }
)
#: Parameter prefixes of the same kind (Google Analytics, Piwik/Matomo, Adobe campaign tags).
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "at_custom")
DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(url: str) -> str:
    """``url`` tidied for storage; a string that is not an http(s) URL comes back stripped."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return url
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.netloc:
        return url
    netloc = _netloc(parts.netloc, scheme)
    path = parts.path or "/"
    query = _drop_tracking(parts.query)
    return urlunsplit((scheme, netloc, path, query, ""))


def url_key(url: str) -> str:
    """The key two addresses of the same article share, for dedup only (never a link):
    ``canonical_url`` without the scheme, a leading "www." or "amp." on the host, a trailing
    slash, and the AMP markers (an "/amp" path segment at either end, an ``amp`` or
    ``outputType=amp`` parameter).

        url_key("http://www.example.org/news/a/amp/?amp=1") → "example.org/news/a"
    """
    canonical = canonical_url(url)
    parts = urlsplit(canonical)
    if parts.scheme not in DEFAULT_PORTS or not parts.netloc:
        return canonical
    netloc = parts.netloc
    for prefix in ("www.", "amp."):
        if netloc.startswith(prefix) and "." in netloc[len(prefix) :]:
            netloc = netloc[len(prefix) :]
    segments = [s for s in parts.path.split("/") if s]
    if segments and segments[-1].lower() == "amp":
        segments.pop()
    elif segments and segments[0].lower() == "amp":
        segments.pop(0)
    if segments and segments[-1].lower().endswith(".amp"):  # /news/a.amp
        segments[-1] = segments[-1][: -len(".amp")]
    path = "/" + "/".join(segments) if segments else ""
    kept = [pair for pair in parts.query.split("&") if pair and not _is_amp_pair(pair)]
    return netloc + path + ("?" + "&".join(kept) if kept else "")


def _is_amp_pair(pair: str) -> bool:
    name, _, value = pair.partition("=")
    name = unquote_plus(name).strip().lower()
    return name == "amp" or (name == "outputtype" and unquote_plus(value).lower() == "amp")


def is_tracking_param(name: str) -> bool:
    """True for a query parameter name that only tracks the reader (``utm_source``, ``fbclid``)."""
    key = unquote_plus(name).strip().lower()
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)


def same_site(url: str, other: str) -> bool:
    """True when both are http(s) URLs on the same host, ignoring case and a leading "www."."""
    host, other_host = _site_host(url), _site_host(other)
    return host is not None and host == other_host


def resolve_canonical(href: str, page_url: str | None) -> str | None:
    """The page's rel=canonical ``href`` as an absolute URL when it may replace ``page_url``.

    It must be http(s) and, when the page's own URL is known, on the same site; a relative
    href is resolved against ``page_url``. Without a page URL an absolute http(s) href is the
    best address there is, so it is taken.
    """
    href = href.strip()
    if not href:
        return None
    absolute = urljoin(page_url, href) if page_url else href
    if _site_host(absolute) is None:
        return None
    if page_url and not same_site(absolute, page_url):
        return None
    return canonical_url(absolute)


def _netloc(netloc: str, scheme: str) -> str:
    userinfo, _, hostport = netloc.rpartition("@")
    host, port = hostport, ""
    if hostport.startswith("["):  # IPv6 literal: [::1]:8080
        end = hostport.find("]")
        host, rest = hostport[: end + 1], hostport[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    elif ":" in hostport:
        host, port = hostport.rsplit(":", 1)
    host = host.lower()
    if port == "" or (port.isdigit() and int(port) == DEFAULT_PORTS[scheme]):
        hostport = host
    else:
        hostport = f"{host}:{port}"
    return f"{userinfo}@{hostport}" if userinfo else hostport


def _drop_tracking(query: str) -> str:
    if not query:
        return ""
    kept = [pair for pair in query.split("&") if pair and not _is_tracking_pair(pair)]
    return "&".join(kept)


def _is_tracking_pair(pair: str) -> bool:
    name = pair.split("=", 1)[0]
    return is_tracking_param(name)


def _site_host(url: str) -> str | None:
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in DEFAULT_PORTS or not host:
        return None
    host = host.lower().rstrip(".")
    return host.removeprefix("www.")
