"""match/rules.py: rule files → RuleSet, their errors with file:line:col, the starter rules.

Bad files live in tests/data/rules/bad/, one error each, with the expected message (and its
excerpt) beside them in <name>.expected. Articles for the starter rules live in
tests/data/rules/articles/, each with the ids of the rules that must match it.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from monitor.match import load_rules, match
from monitor.models import Article, Rule

DATA = Path(__file__).parent.parent / "data" / "rules"
REPO = Path(__file__).parent.parent.parent
BAD = sorted(DATA.glob("bad/*.toml"))
ARTICLES = sorted(DATA.glob("articles/*.json"))


def rules_dir(tmp_path: Path, *files: Path) -> Path:
    target = tmp_path / "rules"
    target.mkdir()
    for file in files:
        shutil.copy(file, target / file.name)
    return target


def article_from(path: Path) -> Article:
    data = json.loads(path.read_text(encoding="utf-8"))
    return Article(
        url=data["url"],
        title=data["title"],
        text=data["text"],
        language=data["language"],
        source=data["source"],
    )


@pytest.mark.parametrize("bad", BAD, ids=[path.stem for path in BAD])
def test_each_bad_file_gives_its_message_with_file_line_col_and_caret(
    tmp_path: Path, bad: Path
) -> None:
    expected = bad.with_suffix(".expected").read_text(encoding="utf-8").rstrip("\n")

    loaded = load_rules(rules_dir(tmp_path, bad))

    assert [str(error) for error in loaded.errors] == [expected]
    assert loaded.rules == ()


def test_good_files_load_in_name_order_with_defaults(tmp_path: Path) -> None:
    loaded = load_rules(DATA / "good")

    assert loaded.errors == ()
    assert [(r.id, r.topic, r.alert, r.file, r.line) for r in loaded.rules] == [
        ("elections-kz", "Elections", "digest", "good/elections.toml", 4),
        ("human-rights-kz", "Human rights", "digest", "good/human-rights.toml", 5),
        ("torture", "torture", "immediate", "good/human-rights.toml", 12),
    ]
    assert loaded.rules[1].query.startswith('("human rights" OR torture')
    assert loaded.topics == ("Elections", "Human rights", "torture")
    assert repr(loaded) == "<RuleSet rules=3 topics=3 errors=0 warnings=0>"


def test_a_bad_file_contributes_no_rules_but_the_others_load(tmp_path: Path) -> None:
    directory = rules_dir(tmp_path, DATA / "good/elections.toml", DATA / "bad/bad-alert.toml")
    shutil.copy(DATA / "good/human-rights.toml", directory / "a-human-rights.toml")
    (directory / "a-human-rights.toml").write_text(
        (directory / "a-human-rights.toml").read_text(encoding="utf-8")
        + '\n[[rule]]\nid = "broken"\nquery = "(torture OR"\n',
        encoding="utf-8",
    )

    loaded = load_rules(directory)

    assert [rule.id for rule in loaded.rules] == ["elections-kz"]
    assert [error.where for error in loaded.errors] == [
        "rules/a-human-rights.toml:17:19",
        "rules/bad-alert.toml:4:9",
    ]


def test_duplicate_ids_across_files_name_the_first_place(tmp_path: Path) -> None:
    directory = rules_dir(tmp_path, DATA / "good/elections.toml")
    (directory / "more.toml").write_text(
        '[[rule]]\nid = "elections-kz"\nquery = "vote"\n', encoding="utf-8"
    )

    loaded = load_rules(directory)

    assert [str(e).splitlines()[0] for e in loaded.errors] == [
        'rules/more.toml:2:1: id: duplicate "elections-kz" (first at rules/elections.toml:2)'
    ]
    assert [rule.id for rule in loaded.rules] == ["elections-kz"]


def test_queries_that_can_never_match_are_warnings(tmp_path: Path) -> None:
    loaded = load_rules(DATA / "warnings")

    assert loaded.errors == ()
    assert [rule.id for rule in loaded.rules] == ["ok", "never", "everything"]
    assert [str(warning) for warning in loaded.warnings] == [
        'warnings/never.toml:7:10: can never match\n    query = "election -election"\n'
        "             ^",
        "warnings/never.toml:11:10: matches every article that has none of its terms"
        ' (it needs a positive term)\n    query = "-sport"\n             ^',
    ]


def test_a_missing_directory_is_an_error_not_an_exception(tmp_path: Path) -> None:
    loaded = load_rules(tmp_path / "nowhere")

    assert [error.what for error in loaded.errors] == ["no such directory"]
    assert loaded.rules == ()


def test_a_loaded_ruleset_pickles(tmp_path: Path) -> None:
    loaded = load_rules(DATA / "good")
    one = Article(url="https://x.kz/", title="Torture in Kazakhstan", text="")

    copy = pickle.loads(pickle.dumps(loaded))

    assert match(one, copy) == match(one, loaded)
    assert [m.rule_id for m in match(one, copy)] == ["human-rights-kz", "torture"]


def test_rule_line_and_file_are_kept_for_messages() -> None:
    loaded = load_rules(DATA / "good")

    assert loaded.rules[0] == Rule(
        "elections-kz",
        "Elections",
        "(election OR =выборы OR =выборах) NEAR/12 (Kazakhstan OR Казахстан*)",
        "digest",
        file="good/elections.toml",
        line=4,
    )


# -- the starter rules shipped in rules/ ------------------------------------------------------


def test_starter_rules_load_cleanly_with_the_four_topics() -> None:
    loaded = load_rules(REPO / "rules")

    assert loaded.errors == ()
    assert loaded.warnings == ()
    assert set(loaded.topics) == {"Human rights", "Elections", "Death penalty", "Media freedom"}
    assert {rule.alert for rule in loaded.rules} == {"digest", "immediate"}


@pytest.mark.parametrize("path", ARTICLES, ids=[path.stem for path in ARTICLES])
def test_starter_rules_match_on_topic_articles_only(path: Path) -> None:
    loaded = load_rules(REPO / "rules")
    expected = json.loads(path.read_text(encoding="utf-8"))["expected_rules"]

    found = match(article_from(path), loaded)

    assert sorted(m.rule_id for m in found) == expected


def test_a_text_that_only_says_kazakhstan_matches_no_starter_rule() -> None:
    loaded = load_rules(REPO / "rules")
    one = Article(
        url="https://example.kz/",
        title="Kazakhstan",
        text="Kazakhstan. Казахстан. Қазақстан. Astana, Almaty, Central Asia.",
    )

    assert match(one, loaded) == []


def test_starter_human_rights_rule_reports_the_terms_it_found() -> None:
    loaded = load_rules(REPO / "rules")
    one = article_from(DATA / "articles/kz-human-rights-press-release.json")

    [found] = [m for m in match(one, loaded) if m.topic == "Human rights"]

    assert found.terms[:3] == ("Kazakhstan", "Human Rights", "Astana")
    assert "torture" in found.terms
    for field, start, end in found.spans:
        assert getattr(one, field)[start:end] in found.terms
