"""match/query.py: the query language's grammar, its tree and its error messages."""

from __future__ import annotations

import pytest

from monitor.match.query import (
    ANYWHERE,
    And,
    Meta,
    Near,
    Not,
    Or,
    QuerySyntaxError,
    Term,
    Word,
    parse,
)


def word(text: str, how: str = "stem", fields: tuple[str, ...] = ANYWHERE) -> Term:
    return Term((Word(text, how),), fields)  # type: ignore[arg-type]


a, b, c = word("a"), word("b"), word("c")


@pytest.mark.parametrize(
    ("query", "tree"),
    [
        ("a b c", And((a, b, c))),
        ("a AND b c", And((a, b, c))),
        ("a OR b c", Or((a, And((b, c))))),
        ("a b OR c", Or((And((a, b)), c))),
        ("(a OR b) c", And((Or((a, b)), c))),
        ("NOT a b", And((Not(a), b))),
        ("-a OR b", Or((Not(a), b))),
        ("a NEAR/3 b c", And((Near(a, b, 3), c))),
        ("a NEAR/3 b OR c", Or((Near(a, b, 3), c))),
        ("a NEAR/3 (b OR c)", Near(a, Or((b, c)), 3)),
        ("a or b", And((a, word("or"), b))),
        ("a OR OREGON", Or((a, word("oregon")))),
    ],
)
def test_precedence_not_near_and_or(query: str, tree: object) -> None:
    assert parse(query) == tree


@pytest.mark.parametrize(
    ("query", "term"),
    [
        ("Élections", Term((Word("elections"),))),
        ("=Élections", Term((Word("elections", "exact"),))),
        ("Kazakh*", Term((Word("kazakh", "prefix"),))),
        ('"Human  Rights"', Term((Word("human"), Word("rights")))),
        ('"political prisoner*"', Term((Word("political"), Word("prisoner", "prefix")))),
        ("«права человека»", Term((Word("права"), Word("человека")))),
        ("\u201chuman rights\u201d", Term((Word("human"), Word("rights")))),
        ("\u201eMenschen rechte\u201c", Term((Word("menschen"), Word("rechte")))),
        ('="human rights"', Term((Word("human", "exact"), Word("rights", "exact")))),
        ("Nur-Sultan", Term((Word("nur"), Word("sultan")))),
        ("Kazakhstan's", Term((Word("kazakhstan"),))),
        ("title:vote", Term((Word("vote"),), ("title",))),
        ("TEXT:vote", Term((Word("vote"),), ("text",))),
    ],
)
def test_terms(query: str, term: Term) -> None:
    assert parse(query) == term


@pytest.mark.parametrize(
    ("query", "meta"),
    [
        ('source:"EU Delegation"', Meta("source", ("eu", "delegation"))),
        ("site:www.Europa.EU", Meta("site", ("europa.eu",))),
        ('site:"https://gov.kz/news"', Meta("site", ("gov.kz",))),
        ("site:xn--80aauk2d.xn--p1ai", Meta("site", ("казах.рф",))),
        ("lang:RU", Meta("lang", ("ru",))),
    ],
)
def test_metadata_fields(query: str, meta: Meta) -> None:
    assert parse(query) == meta


def test_a_field_before_a_group_applies_to_every_term_in_it() -> None:
    assert parse("title:(a OR -b)") == Or(
        (word("a", fields=("title",)), Not(word("b", fields=("title",))))
    )
    assert parse("lang:(en OR ru)") == Or((Meta("lang", ("en",)), Meta("lang", ("ru",))))


@pytest.mark.parametrize(
    ("fast", "general"),
    [
        ('(a OR "b c" OR =d OR e*)', '(a OR "b c" OR =d OR (e*))'),
        ("( a  OR\n b )", "(a OR (b))"),
        ("title:(a OR b)", "title:(a OR (b))"),
        ("x (a OR b) NEAR/2 c", "x ((a) OR b) NEAR/2 c"),
        ("-(a OR ORANGE)", "-((a) OR ORANGE)"),
    ],
)
def test_an_or_list_of_plain_terms_parses_like_any_group(fast: str, general: str) -> None:
    # "(a OR b …)" is lexed as one token for speed; "(…(b))" takes the general grammar
    assert parse(fast) == parse(general)


@pytest.mark.parametrize(
    ("query", "pos", "what"),
    [
        ("", 0, "empty query"),
        ("   ", 0, "empty query"),
        ("election OR", 9, "expected a term after OR"),
        ("election AND", 9, "expected a term after AND"),
        ("a NOT", 2, "expected a term after NOT"),
        ("a -", 2, "expected a term after '-'"),
        ("title:", 0, "expected a term after title:"),
        ("a NEAR/3", 2, "expected a term after NEAR/3"),
        ("OR a", 0, "expected a term before OR"),
        ("(AND a)", 1, "expected a term before AND"),
        ("a OR OR b", 5, "expected a term after OR, found OR"),
        ("a OR )", 5, "expected a term after OR, found ')'"),
        ("(torture OR", 9, "expected a term after OR"),
        ("a (b c", 2, "unclosed ("),
        ("a b)", 3, "unmatched )"),
        ("a () b", 2, "empty parentheses"),
        ('a "human rights', 2, "unclosed quote"),
        ("a «права человека", 2, "unclosed quote"),
        ('""', 0, "empty phrase"),
        ("a = b", 2, "expected a word or a phrase after ="),
        ("autor:x", 0, 'unknown field "autor:" (fields: title, text, source, site, lang)'),
        ("a*b", 1, "* may only end a word (prefix*)"),
        ("*", 0, "* needs letters before it"),
        ("a & b", 2, '"&" has no letters or digits'),
        ("(a OR & OR c)", 6, '"&" has no letters or digits'),
        ("(a OR b*c)", 7, "* may only end a word (prefix*)"),
        ("a NEAR b", 2, "NEAR needs a distance, as in NEAR/5"),
        (
            "NOT a NEAR/3 b",
            6,
            "NEAR joins words, phrases or (… OR …) groups of them, not NOT or AND",
        ),
        (
            "(a b) NEAR/3 c",
            6,
            "NEAR joins words, phrases or (… OR …) groups of them, not NOT or AND",
        ),
        ("title:(text:a)", 7, "text: inside title:( … )"),
        ("title:(lang:en)", 7, "lang: inside title:( … )"),
        ("site:(a NEAR/2 b)", 8, "NEAR inside site:( … ): it compares text words"),
        ("lang:english", 5, "lang: takes a language code, such as en or ru"),
        ("site:a/b", 5, "site: takes a host name, such as europa.eu"),
        ("source:Reut*", 11, "source: takes a name, without *"),
    ],
)
def test_syntax_errors_say_what_and_where(query: str, pos: int, what: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse(query)

    assert (caught.value.pos, caught.value.what) == (pos, what)
