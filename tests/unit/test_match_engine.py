"""match/engine.py: what each operator matches, in which field, and the spans it reports."""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor

import pytest

from monitor.errors import RuleError
from monitor.match import compile_queries
from monitor.match.rules import RuleSet
from monitor.models import Article, Rule


def matches(query: str, text: str, lang: str | None = None) -> bool:
    return compile_queries([query]).match(text, lang) == {0}


def article(title: str = "", text: str = "", **more: str) -> Article:
    return Article(url=more.pop("url", "https://example.org/a"), title=title, text=text, **more)  # type: ignore[arg-type]


# -- words and their inflections --------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("election", "Elections were held on Sunday."),
        ("elections", "The election was calm."),
        ("election", "the ELECTION"),
        ("выборы", "на выборах в парламент"),
        ("выборы", "итоги выборов"),
        ("выборах", "выборы прошли спокойно"),
        ('"права человека"', "о правах человека"),
        ('"права человека"', "защита прав человека"),
        ('"смертная казнь"', "отмена смертной казни"),
        ('"смертной казни"', "смертная казнь отменена"),
        ("Казахстан", "в Казахстане"),
        ("Казахстан", "из Казахстана"),
        ("Казахстане", "Казахстан и ЕС"),
        ("torture", "detainees were tortured"),
    ],
)
def test_a_word_finds_its_inflections(query: str, text: str) -> None:
    assert matches(query, text)


@pytest.mark.parametrize(
    ("query", "text"),
    [("election", "electricity prices"), ("выборы", "правительство"), ("right", "bright")],
)
def test_a_word_does_not_find_other_words(query: str, text: str) -> None:
    assert not matches(query, text)


def test_elected_is_not_an_inflection_of_election_but_prefix_elect_finds_both() -> None:
    # Snowball stems both to "elect"; documented: stemming, not meaning, decides.
    assert matches("election", "she was elected")
    assert matches("elect*", "electoral reform")


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("élection", "ELECTION"),
        ("election", "Élections législatives"),
        ("kazakhstan", "ＫＡＺＡＫＨＳＴＡＮ"),  # noqa: RUF001 -- full-width letters on purpose
        ("елка", "ёлка"),
        ("ёлка", "ЕЛКА"),
    ],
)
def test_case_accents_and_width_do_not_matter(query: str, text: str) -> None:
    assert matches(query, text)


def test_russian_words_with_short_i_still_stem_together() -> None:
    assert matches("смертной", "смертная казнь")
    assert matches("районе", "новый район")
    assert not matches("район", "раион")  # й stays a letter of its own


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("Қазақстан", "ҚАЗАҚСТАН Республикасы", True),
        ("Өскемен", "в Өскемен", True),
        ("Қазақстан*", "Қазақстанда сайлау", True),
        ("Қазақстан", "Казахстан", False),
        ("Өскемен", "Оскемен", False),
    ],
)
def test_kazakh_letters_match_themselves_only(query: str, text: str, expected: bool) -> None:
    assert matches(query, text) is expected


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("Kazakhstan", "Kazakhstan's economy", True),
        ("Kazakhstan", "Kazakhstan\u2019s economy", True),
        ('"Kazakhstan\'s economy"', "Kazakhstan economy", True),
        ("Nur-Sultan", "in Nur-Sultan today", True),
        ("Nur-Sultan", "in Nur\u2013Sultan today", True),
        ("Nur-Sultan", "in Nur Sultan today", True),
        ("Nur-Sultan", "Sultan Nur", False),
        ("Sultan", "in Nur-Sultan", True),
        ("COVID-19", "covid 19 cases", True),
        ("2024", "in 2024 the", True),
        ("10,000", "10,000 people", True),
    ],
)
def test_hyphens_apostrophes_and_numbers(query: str, text: str, expected: bool) -> None:
    assert matches(query, text) is expected


# -- operators --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("=elections", "the elections", True),
        ("=elections", "the election", False),
        ("=выборы", "выборы", True),
        ("=выборы", "выборах", False),
        ("=выборы", "выбор", False),
        ("=Election", "ELECTION", True),
        ("Kazakh*", "Kazakhstani officials", True),
        ("Kazakh*", "a Kazakh singer", True),
        ("Kazakh*", "Kazan", False),
        ('"human rights"', "Human Rights Watch", True),
        ('"human rights"', "rights of humans", False),
        ('"human rights"', "human and civil rights", False),
        ('"political prisoner*"', "political prisoners", True),
        ('="human rights"', "human rights", True),
        ('="human rights"', "human right", False),
    ],
)
def test_exact_prefix_and_phrase(query: str, text: str, expected: bool) -> None:
    assert matches(query, text) is expected


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("a b", "b and a", True),
        ("a b", "a only", False),
        ("a AND b", "a b", True),
        ("a OR b", "b", True),
        ("a OR b", "c", False),
        ("a -b", "a", True),
        ("a -b", "a b", False),
        ("a NOT b", "a b", False),
        ("a NOT b", "a c", True),
        ("NOT b a", "a", True),
        ("a or b", "a", False),  # lower-case "or" is a word: a AND or AND b
        ("a or b", "a or b", True),
        ("a and b", "a b", False),
        ("(a OR b) c", "b c", True),
        ("(a OR b) c", "a b", False),
        ("a -(b OR c)", "a c", False),
        ("a -(b OR c)", "a d", True),
        # precedence: AND binds tighter than OR
        ("a b OR c", "c", True),
        ("a b OR c", "a", False),
        ("a OR b c", "a", True),
        ("a OR b c", "b", False),
        # NOT binds tighter than AND and OR
        ("NOT a OR b", "b a", True),
        ("NOT a OR b", "c", True),
        ("NOT a OR b", "a", False),
    ],
)
def test_boolean_operators_and_precedence(query: str, text: str, expected: bool) -> None:
    assert matches(query, text) is expected


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("a NEAR/2 b", "a b", True),
        ("a NEAR/2 b", "b a", True),
        ("a NEAR/2 b", "a x x b", True),
        ("a NEAR/2 b", "b x x a", True),
        ("a NEAR/2 b", "a x x x b", False),
        ("a NEAR/0 b", "a b", True),
        ("a NEAR/0 b", "a x b", False),
        ("a NEAR/2 a", "a", False),  # one word is not near itself
        ("a NEAR/2 a", "a x a", True),
        ('"human rights" NEAR/3 Kazakhstan', "Kazakhstan and its human rights record", True),
        ('"human rights" NEAR/1 Kazakhstan', "human rights record of the Kazakhstan", False),
        ("(a OR b) NEAR/1 c", "x b c", True),
        ("(a OR b) NEAR/1 c", "a x x c", False),
        ("a NEAR/1 b NEAR/1 c", "a b c", True),
        ("a NEAR/1 b NEAR/1 c", "a b x x c", False),
        ("election NEAR/3 Kazakh*", "the elections in Kazakhstan", True),
        ("election NEAR/3 Kazakh*", "elections in Europe and, much later, in Kazakhstan", False),
    ],
)
def test_near_counts_words_between_in_either_order(query: str, text: str, expected: bool) -> None:
    assert matches(query, text) is expected


def test_near_does_not_reach_across_title_and_text() -> None:
    rules = RuleSet.from_query("election NEAR/5 Kazakhstan")

    assert rules.match(article("Kazakhstan", "elections")) == []
    assert rules.match(article("Kazakhstan elections", ""))


def test_near_finds_word_forms_first_met_in_earlier_texts() -> None:
    # the forms of a query word met in one text are remembered; later texts find their
    # positions through that memory, whichever text met them first
    queries = compile_queries(["election NEAR/1 vote", "=votes NEAR/1 Elections"])

    assert queries.match("Elections, elected, votes: all here.") == {0, 1}
    assert queries.match("votes elections") == {0, 1}
    assert queries.match("the vote came long after the elections") == set()
    assert queries.match("vote: Elections") == {0}


# -- fields -----------------------------------------------------------------------------------


def test_a_term_without_a_field_matches_title_or_text() -> None:
    rules = RuleSet.from_query("torture")

    assert rules.match(article("Torture report", "nothing"))
    assert rules.match(article("Report", "on torture"))
    assert not rules.match(article("Report", "nothing"))


def test_title_and_text_scopes() -> None:
    in_title = RuleSet.from_query("title:torture")
    in_text = RuleSet.from_query('text:("human rights" OR torture)')

    assert in_title.match(article("Torture report", "nothing"))
    assert not in_title.match(article("Report", "on torture"))
    assert in_text.match(article("Report", "on torture"))
    assert not in_text.match(article("Torture and human rights", "nothing"))


def test_source_site_and_lang_scopes() -> None:
    one = article(
        "Statement",
        "text",
        url="https://www.eeas.europa.eu/delegations/kazakhstan/x",
        source="EU Delegation to Kazakhstan",
        language="en-GB",
    )

    def hit(query: str) -> bool:
        return bool(RuleSet.from_query(query).match(one))

    assert hit('source:"EU Delegation to Kazakhstan"')
    assert hit("source:delegation")
    assert not hit('source:"Delegation EU"')
    assert hit("site:europa.eu")
    assert hit("site:eeas.europa.eu")
    assert hit("site:www.eeas.europa.eu")
    assert not hit("site:pa.eu")
    assert not hit("site:gov.kz")
    assert hit("lang:en")
    assert hit("lang:(ru OR en)")
    assert not hit("lang:ru")
    assert hit("statement -lang:ru")


def test_lang_comes_from_compile_queries_argument() -> None:
    queries = compile_queries(["lang:ru выборы", "lang:en election"])

    assert queries.match("выборах", lang="ru") == {0}
    assert queries.match("elections", lang="en") == {1}
    assert queries.match("elections") == set()


def test_a_scoped_group_scopes_every_term_in_it() -> None:
    rules = RuleSet.from_query("title:(a OR (b c))")

    assert rules.match(article("b c", "a"))
    assert not rules.match(article("b", "c a"))


# -- spans and terms --------------------------------------------------------------------------


def test_spans_point_at_the_matched_words_in_title_and_text() -> None:
    rules = RuleSet.from_query('("human rights" OR torture) Kazakh* -sport')
    one = article(
        "Kazakhstan: Human Rights dialogue",
        "The EU raised torture.\nKazakhstan's reply came later; Kazakh officials agreed.",
    )

    [found] = rules.match(one)

    texts = [(field, getattr(one, field)[a:b]) for field, a, b in found.spans]
    assert texts == [
        ("title", "Kazakhstan"),
        ("title", "Human Rights"),
        ("text", "torture"),
        ("text", "Kazakhstan"),
        ("text", "Kazakh"),
    ]
    assert found.terms == ("Kazakhstan", "Human Rights", "torture", "Kazakh")


def test_spans_leave_out_terms_of_not_clauses_and_of_false_alternatives() -> None:
    rules = RuleSet.from_query("(a OR b) NOT (c d)")
    one = article("", "a c x")

    [found] = rules.match(one)

    assert [one.text[s:e] for _, s, e in found.spans] == ["a"]


def test_near_spans_are_the_two_sides_not_the_words_between() -> None:
    rules = RuleSet.from_query('"death penalty" NEAR/3 Kazakhstan')
    one = article("", "Kazakhstan has abolished the death penalty; a long process in Kazakhstan")

    [found] = rules.match(one)

    assert [one.text[s:e] for _, s, e in found.spans] == ["Kazakhstan", "death penalty"]


def test_spans_of_overlapping_terms_merge() -> None:
    rules = RuleSet.from_query('"human rights" OR human')
    one = article("", "human rights")

    [found] = rules.match(one)

    assert found.spans == (("text", 0, 12),)


def test_match_carries_rule_id_topic_and_alert() -> None:
    rules = RuleSet.from_rules(
        [
            Rule("a", "Topic A", "torture", "immediate"),
            Rule("b", "Topic B", "election"),
            Rule("c", "Topic A", "torture OR election"),
        ]
    )

    found = rules.match(article("", "torture"))

    assert [(m.rule_id, m.topic, m.alert) for m in found] == [
        ("a", "Topic A", "immediate"),
        ("c", "Topic A", "digest"),
    ]
    assert rules.topics == ("Topic A", "Topic B")
    assert repr(rules) == "<RuleSet rules=3 topics=2 errors=0 warnings=0>"


# -- compile_queries --------------------------------------------------------------------------


def test_compile_queries_returns_the_indices_of_the_matching_queries() -> None:
    queries = compile_queries(["election", "torture", "election OR torture", "x", "election"])

    assert queries.match("Elections and torture") == {0, 1, 2, 4}
    assert queries.match("nothing") == set()
    assert len(queries) == 5


def test_compile_queries_ignores_titles_the_body_has_no_title() -> None:
    queries = compile_queries(["title:election", "text:election"])

    assert queries.match("election") == {1}


def test_compile_queries_names_the_bad_query_and_its_column() -> None:
    with pytest.raises(RuleError) as caught:
        compile_queries(["election", "torture OR", "x"])

    assert caught.value.where == "query[1]"
    assert str(caught.value) == (
        "query[1]: column 9: expected a term after OR\n    torture OR\n            ^"
    )


def test_compile_queries_gives_line_and_column_in_multiline_queries() -> None:
    with pytest.raises(RuleError) as caught:
        compile_queries(["a OR\nb AND (c"])

    assert caught.value.what == "line 2, column 7: unclosed ("


def test_never_matching_query_is_a_warning_not_an_error() -> None:
    queries = compile_queries(["a -a", '"a b" -b', "lang:en lang:ru", "title:a NEAR/2 text:b", "a"])

    assert [(w.where, w.what) for w in queries.warnings] == [
        ("query[0]", "can never match"),
        ("query[1]", "can never match"),
        ("query[2]", "can never match"),
        ("query[3]", "can never match"),
    ]
    assert queries.match("a b") == {4}


def test_query_without_positive_term_is_a_warning() -> None:
    queries = compile_queries(["-sport", "a OR -b", "lang:ru"])

    assert [w.where for w in queries.warnings] == ["query[0]", "query[1]"]
    assert queries.match("news") == {0, 1}


def test_compiled_queries_pickle_and_match_the_same() -> None:
    queries = compile_queries(['"human rights" Kazakh*', "выборы", "a NEAR/2 b"])

    copy = pickle.loads(pickle.dumps(queries))

    text = "выборах: human rights in Kazakhstan, a x b"
    assert copy.match(text) == queries.match(text) == {0, 1, 2}


def test_a_ruleset_can_be_shared_by_threads() -> None:
    rules = RuleSet.from_rules([Rule(f"r{i}", "T", f"word{i} OR выборы") for i in range(50)])
    texts = [article("", f"word{i} выборах") for i in range(50)]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(rules.match, texts * 4))

    assert all(len(found) == 50 for found in results)
