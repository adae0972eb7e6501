"""match/analyze.py: how words are cut out of a text, folded and stemmed."""

from __future__ import annotations

import pickle

import pytest

from monitor.match.analyze import Analyzer, WordIndex, fold, plan_for, token_spans, tokens


@pytest.mark.parametrize(
    ("word", "folded"),
    [
        ("Élection", "election"),
        ("ÉLECTION", "election"),
        ("ＫＡＺＡＫＨＳＴＡＮ", "kazakhstan"),  # noqa: RUF001 -- full-width letters on purpose
        ("Straße", "strasse"),
        ("ﬁnance", "finance"),
        ("İstanbul", "istanbul"),
        ("ВЫБОРЫ", "выборы"),
        ("Ёлка", "елка"),
        ("вы\u0301боры", "выборы"),  # noqa: RUF001 -- a Russian stress mark is an accent
    ],
)
def test_fold_ignores_case_accents_and_width(word: str, folded: str) -> None:
    assert fold(word) == folded


@pytest.mark.parametrize("word", ["йод", "район", "смертной", "ЙОД", "Ўзбекистон"])
def test_fold_keeps_the_cyrillic_short_i_and_short_u(word: str) -> None:
    folded = fold(word)

    assert "и\u0306" not in folded  # recomposed, not decomposed
    assert ("й" in folded) or ("ў" in folded)


@pytest.mark.parametrize(
    ("word", "folded"),
    [("ҚАЗАҚСТАН", "қазақстан"), ("Өскемен", "өскемен"), ("ӘҒҚҢӨҰҮҺІ", "әғқңөұүһі")],
)
def test_fold_lowercases_kazakh_letters_without_turning_them_into_russian_ones(
    word: str, folded: str
) -> None:
    assert fold(word) == folded


def test_tokens_split_hyphens_and_drop_the_possessive_s() -> None:
    text = (
        "Kazakhstan's capital Nur-Sultan, O'Brien and Kazakhstan\u2019s COVID-19 plan: 10,000 it's"
    )

    assert tokens(text) == [
        "Kazakhstan",
        "capital",
        "Nur",
        "Sultan",
        "O",
        "Brien",
        "and",
        "Kazakhstan",
        "COVID",
        "19",
        "plan",
        "10",
        "000",
        "it",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "x's's's y's",
        "it\u2019s's",
        "a'b\u2019s c'sa d'S",
        "'s _'s a_'s",
        "Kazakhstan\u02bcs vote",
        "a\U00011100b's c\u0301d's",
    ],
)
def test_tokens_are_the_text_at_the_token_spans(text: str) -> None:
    # tokens() blanks possessives out and takes runs; token_spans() uses the one pattern
    assert tokens(text) == [text[a:b] for a, b in token_spans(text)]


def test_token_spans_leave_the_possessive_out_of_the_span() -> None:
    text = "Kazakhstan's vote"

    assert [text[a:b] for a, b in token_spans(text)] == ["Kazakhstan", "vote"]


def test_tokens_keep_combining_marks_and_soft_hyphens_inside_words() -> None:
    stressed = "вы\u0301боры"  # noqa: RUF001 -- a Russian stress mark
    text = f"{stressed} Kasach\u00adstan हिन्दी snake_case"

    assert tokens(text) == [stressed, "Kasach\u00adstan", "हिन्दी", "snake", "case"]
    assert fold("Kasach\u00adstan") == "kasachstan"


def test_stemming_uses_english_for_latin_and_russian_for_cyrillic_by_default() -> None:
    analyzer = Analyzer()
    plan = plan_for(None)

    stems = analyzer.stem_many(plan, ["elections", "election", "выборах", "выборов", "выборы"])

    assert stems[0] == stems[1]
    assert stems[2] == stems[3] == stems[4]


def test_stemming_uses_the_article_language_for_words_in_its_script() -> None:
    analyzer = Analyzer()

    french = dict(plan_for("fr-FR"))
    kazakh = dict(plan_for("kk"))

    assert french["latn"] == "french"
    assert french["cyrl"] == "russian"
    assert kazakh == dict(plan_for(None))  # no Snowball stemmer for Kazakh
    assert analyzer.stem(plan_for("fr"), "elections") == analyzer.stem(plan_for("fr"), "election")


def test_the_analyzer_pickles_without_its_memory_and_still_works() -> None:
    analyzer = Analyzer()
    plan = plan_for("ru")
    analyzer.learn(plan, {"Выборах"})

    copy = pickle.loads(pickle.dumps(analyzer))

    assert copy.known(plan).stems == {}
    known = copy.learn(plan, {"Выборах"})
    assert (known.folded["Выборах"], known.stems["Выборах"]) == ("выборах", "выбор")


def test_tokens_keep_combining_marks_beyond_the_basic_plane_inside_words() -> None:
    # U+11100 CHAKMA SIGN CANDRABINDU: a mark outside the BMP, in a text that has one
    text = "a\U00011100b and c\u0301d"

    assert tokens(text) == ["a\U00011100b", "and", "c\u0301d"]
    assert [text[a:b] for a, b in token_spans(text)] == ["a\U00011100b", "and", "c\u0301d"]


def test_query_words_are_still_found_after_the_memory_of_text_words_is_reset() -> None:
    index = WordIndex([("elect", "stem", 0), ("kaz", "prefix", 1)], Analyzer(), plan_for("en"))
    index.LIMIT = 3  # a tiny memory, to make it forget

    first = index.field("Elections in Kazakhstan were held")
    second = index.field("Kazakh voters elected a parliament")

    assert first.present == {0, 1}
    assert second.present == {0, 1}
    assert second.positions(1) == [0]
    assert second.positions(0) == [2]


def test_two_word_phrases_are_still_found_after_the_memory_of_word_pairs_is_reset() -> None:
    words = [("human", "stem", 0), ("right", "stem", 1)]
    index = WordIndex(words, Analyzer(), plan_for("en"), {(0, 1): 2})
    index.LIMIT = 6  # the 6 words below fit; their 9 pairs do not, so the pairs are forgotten
    index.field("human rights")

    mixed = index.field(
        "human rights Human Rights HUMAN RIGHTS human Rights Human rights HUMAN rights "
        "human RIGHTS Human RIGHTS HUMAN Rights"
    )
    after = index.field("HUMAN RIGHTS")

    assert 2 in mixed.present
    assert 2 in after.present
    assert 2 not in index.field("rights human").present


def test_query_words_are_still_found_after_the_memory_grows_its_arrays() -> None:
    index = WordIndex([("x", "stem", 0), ("w", "prefix", 1)], Analyzer(), plan_for("en"))
    # 3,000 words matching w*, then 3,000 more: the second text does not fit the room left
    index.field("x " + " ".join(f"w{i}" for i in range(3000)))
    index.field(" ".join(f"w{i}" for i in range(3000, 6000)))

    again = index.field("w17 and then w4999")

    assert again.present == {1}
    assert again.positions(1) == [0, 3]
