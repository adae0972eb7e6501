"""text_fingerprint(): the same text re-published with other formatting gets the same hash."""

from __future__ import annotations

from monitor.clean.dedupe import MIN_CHARS, text_fingerprint

STORY = (
    "The European Union and Kazakhstan signed an agreement on water management in the Syr "
    "Darya basin on Tuesday. Farmers in the region will benefit from new pumping stations "
    "and a programme of canal lining worth 20 million euro over five years, the Ministry said."
)


def test_case_whitespace_and_punctuation_do_not_change_the_fingerprint() -> None:
    reposted = STORY.upper().replace(". ", ".\n\n").replace(",", " ,").replace("euro", "euro!")
    assert text_fingerprint(reposted) == text_fingerprint(STORY)


def test_typographic_quotes_and_dashes_do_not_change_the_fingerprint() -> None:
    plain = STORY + ' "We are ready" - said the minister.'
    fancy = STORY + " \u00abWe are ready\u00bb \u2014 said the minister."
    assert text_fingerprint(plain) == text_fingerprint(fancy)


def test_a_different_word_changes_the_fingerprint() -> None:
    assert text_fingerprint(STORY.replace("Tuesday", "Wednesday")) != text_fingerprint(STORY)


def test_cyrillic_text_is_fingerprinted() -> None:
    text = "Европейский союз и Казахстан подписали соглашение. " * 5
    assert text_fingerprint(text) == text_fingerprint(text.upper().replace(".", " "))


def test_short_texts_have_no_fingerprint() -> None:
    assert text_fingerprint("") is None
    assert text_fingerprint("Read more") is None
    assert text_fingerprint("x" * (MIN_CHARS - 1)) is None
    assert text_fingerprint("x" * MIN_CHARS) is not None


def test_punctuation_does_not_count_towards_the_length() -> None:
    assert text_fingerprint("word. " * 30 + "!" * 100) is None  # 149 characters once normalised


def test_the_fingerprint_is_a_sha256_hex_digest() -> None:
    fingerprint = text_fingerprint(STORY)
    assert fingerprint is not None
    assert len(fingerprint) == 64
    assert set(fingerprint) <= set("0123456789abcdef")
