"""canonical_url(): one string per page, still a working link."""

from __future__ import annotations

import pytest

from monitor.clean import canonical_url, url_key
from monitor.clean.urls import resolve_canonical, same_site


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://WWW.EEAS.Europa.EU/news_en", "https://www.eeas.europa.eu/news_en"),
        ("https://example.org:443/a", "https://example.org/a"),
        ("http://example.org:80/a", "http://example.org/a"),
        ("http://example.org:8080/a", "http://example.org:8080/a"),
        ("https://example.org:80/a", "https://example.org:80/a"),
        ("https://example.org/a#comments", "https://example.org/a"),
        ("https://example.org", "https://example.org/"),
        ("https://example.org?page=2", "https://example.org/?page=2"),
        ("  https://example.org/a \n", "https://example.org/a"),
    ],
)
def test_scheme_host_port_fragment_and_empty_path(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://example.org/a?utm_source=rss&utm_medium=feed&utm_campaign=x",
            "https://example.org/a",
        ),
        ("https://example.org/a?id=7&fbclid=IwAR0abc&page=2", "https://example.org/a?id=7&page=2"),
        ("https://example.org/a?gclid=1&mc_cid=2&mc_eid=3&yclid=4&_ga=5", "https://example.org/a"),
        ("https://example.org/a?ref_src=twsrc%5Etfw&lang=ru", "https://example.org/a?lang=ru"),
        ("https://example.org/a?UTM_Source=x&b=1", "https://example.org/a?b=1"),
    ],
)
def test_tracking_parameters_are_dropped(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_other_parameters_keep_their_order_and_spelling() -> None:
    url = "https://example.org/search?q=human%20rights&b=2&a=1&empty=&flag"
    assert canonical_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/News/Item%20One/",
        "https://example.org/a//b/./c",
        "https://example.org/%D0%BD%D0%BE%D0%B2%D0%BE%D1%81%D1%82%D0%B8",
        "https://example.org/новости",
        "https://example.org/a;jsessionid=1",
    ],
)
def test_the_path_is_kept_as_is(url: str) -> None:
    assert canonical_url(url) == url


def test_user_info_and_ipv6_hosts_survive() -> None:
    assert canonical_url("http://user@EXAMPLE.org:80/a") == "http://user@example.org/a"
    assert canonical_url("http://[::1]:80/a") == "http://[::1]/a"
    assert canonical_url("http://[::1]:8080/a") == "http://[::1]:8080/a"


@pytest.mark.parametrize("url", ["", "not a url", "mailto:press@example.org", "/relative/path"])
def test_what_is_not_an_http_url_comes_back_stripped(url: str) -> None:
    assert canonical_url(f" {url} ") == url


def test_same_site_ignores_www_and_case() -> None:
    assert same_site("https://www.eeas.europa.eu/a", "http://EEAS.europa.eu/b")
    assert not same_site("https://eeas.europa.eu/a", "https://news.example.com/a")
    assert not same_site("ftp://eeas.europa.eu/a", "https://eeas.europa.eu/a")


def test_a_relative_canonical_is_resolved_against_the_page() -> None:
    found = resolve_canonical("/news/a_en?utm_source=x", "https://www.eeas.europa.eu/node/1")
    assert found == "https://www.eeas.europa.eu/news/a_en"


def test_a_canonical_on_another_site_is_refused() -> None:
    assert resolve_canonical("https://aggregator.example.com/a", "https://eeas.europa.eu/a") is None


def test_a_canonical_that_is_not_http_is_refused() -> None:
    assert resolve_canonical("javascript:void(0)", "https://eeas.europa.eu/a") is None
    assert resolve_canonical("", "https://eeas.europa.eu/a") is None


def test_without_a_page_url_an_absolute_canonical_is_taken() -> None:
    assert resolve_canonical("https://eeas.europa.eu/a#x", None) == "https://eeas.europa.eu/a"
    assert resolve_canonical("/a", None) is None


@pytest.mark.parametrize(
    "variant",
    [
        "https://www.example.org/news/eu-statement",
        "http://www.example.org/news/eu-statement",
        "https://example.org/news/eu-statement/",
        "https://www.example.org/news/eu-statement?utm_source=twitter&fbclid=x",
        "https://www.example.org/news/eu-statement#comments",
        "HTTPS://WWW.EXAMPLE.ORG:443/news/eu-statement",
        "https://www.example.org/news/eu-statement/amp/",
        "https://www.example.org/news/eu-statement/amp",
        "https://www.example.org/amp/news/eu-statement",
        "https://www.example.org/news/eu-statement.amp",
        "https://www.example.org/news/eu-statement?amp=1",
        "https://www.example.org/news/eu-statement?amp",
        "https://www.example.org/news/eu-statement?outputType=amp",
        "https://amp.example.org/news/eu-statement",
    ],
)
def test_variants_of_one_article_share_a_url_key(variant: str) -> None:
    assert url_key(variant) == url_key("https://www.example.org/news/eu-statement")
    assert url_key(variant) == "example.org/news/eu-statement"


@pytest.mark.parametrize(
    "other",
    [
        "https://www.example.org/news/eu-statement-2",
        "https://www.example.org/news/eu-statement?id=2",
        "https://www.example.org/news/example-amplifier",
        "https://news.example.org/news/eu-statement",
        "https://www.example.org/news/amp/eu-statement",
        "https://www.example.org/news/eu-statement?amp_id=4",
    ],
)
def test_different_articles_keep_different_url_keys(other: str) -> None:
    assert url_key(other) != url_key("https://www.example.org/news/eu-statement")


def test_the_canonical_url_stays_a_working_link_while_the_key_does_not() -> None:
    assert canonical_url("http://example.org/a/") == "http://example.org/a/"
    assert url_key("http://example.org/a/") == "example.org/a"
