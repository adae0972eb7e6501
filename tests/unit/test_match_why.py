"""Match.why: the satisfied part of a rule's query, as query text ("why this alert")."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.match import compile_queries
from monitor.match.rules import RuleSet
from monitor.models import Article


def why(query: str, text: str = "", title: str = "", **more: str) -> str:
    found = RuleSet.from_query(query).match(
        Article(url=more.pop("url", "https://example.org/a"), title=title, text=text, **more)  # type: ignore[arg-type]
    )
    assert len(found) == 1, f"{query!r} did not match"
    return found[0].why


def test_why_leaves_out_the_or_alternatives_that_did_not_match_and_the_not_clause() -> None:
    query = '("human rights" OR torture) AND (Kazakhstan OR Astana) -sport'

    assert why(query, "Reports of torture in a prison near Astana.") == "torture AND Astana"


def test_why_keeps_every_or_alternative_that_matched() -> None:
    query = '("human rights" OR torture OR detention) (Kazakhstan OR Astana)'

    text = "Human rights groups said torture was common in Kazakhstan."
    assert why(query, text) == '("human rights" OR torture) AND Kazakhstan'


def test_why_shows_words_as_the_query_wrote_them_not_as_the_article_inflects_them() -> None:
    assert why("Election AND выборы", "elections; о выборах") == "Election AND выборы"


def test_why_of_a_phrase_is_the_quoted_phrase() -> None:
    assert why('"death penalty" OR execution', "abolished the death penalties") == (
        '"death penalty"'
    )


def test_why_keeps_exact_words_and_prefixes_as_written() -> None:
    query = "(=Astana OR =Almaty) AND (journalist* OR reporter*)"

    assert why(query, "Journalists detained in Almaty.") == "=Almaty AND journalist*"


def test_why_keeps_the_field_of_a_scoped_term() -> None:
    query = "title:(election OR vote) AND text:(Kazakhstan OR Astana)"

    assert why(query, title="Vote count", text="In Astana today.") == "title:vote AND text:Astana"


def test_why_keeps_metadata_scopes() -> None:
    query = '(election OR vote) AND source:"EU Delegation" AND site:europa.eu'

    found = why(
        query,
        "The vote was held.",
        source="EU Delegation to Kazakhstan",
        url="https://www.eeas.europa.eu/x",
    )
    assert found == 'vote AND source:"EU Delegation" AND site:europa.eu'


def test_why_of_near_keeps_only_the_alternatives_that_were_within_the_distance() -> None:
    query = "(election OR vote OR referendum) NEAR/2 (Astana OR Almaty)"
    text = "A referendum is planned. Then a long sentence, and the vote in Almaty was calm."

    # "referendum" occurs, but not within two words of Astana or Almaty
    assert why(query, text) == "vote NEAR/2 Almaty"


def test_why_of_an_or_between_near_and_a_word_keeps_the_near_that_held() -> None:
    query = "(torture NEAR/3 prison) OR detention"

    assert why(query, "Torture in the prison was reported.") == "torture NEAR/3 prison"


def test_why_of_a_query_of_not_clauses_only_is_the_query() -> None:
    assert why("-sport", "Parliament met today.") == "-sport"


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ('("human rights" OR torture) AND (Kazakhstan OR Astana) -sport', "torture in Astana"),
        ("(a OR b) NEAR/1 (c OR d)", "x b y d"),
        ("title:x OR (y AND -z)", "y"),
        ('="exact phrase" OR prefix* NOT other', "prefixes"),
    ],
)
def test_why_is_a_query_that_matches_the_article_itself(query: str, text: str) -> None:
    found = why(query, text)

    assert compile_queries([found]).match(text) == {0}


WORDS = ["cat", "cats", "dog", "run", "running", "x", "выборы", "выборах"]
term = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from(WORDS).map(lambda w: f"={w}"),
    st.sampled_from(WORDS).map(lambda w: f"{w[:2]}*"),
    st.tuples(st.sampled_from(WORDS), st.sampled_from(WORDS)).map(lambda p: f'"{p[0]} {p[1]}"'),
)
side = st.recursive(
    term, lambda inner: st.tuples(inner, inner).map(lambda p: f"({p[0]} OR {p[1]})"), max_leaves=3
)
query = st.recursive(
    st.one_of(
        term, st.tuples(side, st.integers(0, 3), side).map(lambda t: f"{t[0]} NEAR/{t[1]} {t[2]}")
    ),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda p: f"({p[0]} AND {p[1]})"),
        st.tuples(inner, inner).map(lambda p: f"({p[0]} OR {p[1]})"),
        st.tuples(inner, inner).map(lambda p: f"({p[0]} -({p[1]}))"),
    ),
    max_leaves=6,
)
body = st.lists(st.sampled_from(WORDS), max_size=10).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(query=query, text=body)
def test_why_of_any_match_parses_and_matches_the_same_article(query: str, text: str) -> None:
    if compile_queries([query]).match(text) != {0}:
        return
    found = why(query, text)

    assert compile_queries([found]).match(text) == {0}, found
