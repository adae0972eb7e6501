"""text_fingerprint(): the same text re-published with other formatting gets the same hash."""

from __future__ import annotations

from monitor.clean.dedupe import (
    HASHES,
    MIN_CHARS,
    is_near_duplicate,
    most_similar,
    signature,
    similarity,
    text_fingerprint,
)
from monitor.store.signatures import from_rows

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


# -- near duplicates: MinHash signatures ------------------------------------------------------

RELEASE = (
    "The European Union and Kazakhstan signed a memorandum on water cooperation in Astana on "
    "Tuesday. The agreement covers irrigation, dam safety and the sharing of data on "
    "transboundary rivers. It was signed by the EU Ambassador and the Minister of Water "
    "Resources, who said the first projects would start next spring in the Turkestan region. "
    "Some 40 million euro will be spent over five years on canal lining, pumping stations and "
    "training for the basin authorities of the Syr Darya and the Ili. Farmers' associations "
    "will be consulted on every project before work begins, the Ministry added."
)
OTHER = (
    "The national football team lost two to one to Georgia in a friendly match played in "
    "Tbilisi on Saturday evening. The coach blamed the heavy rain and the state of the pitch, "
    "and said that the squad would train harder before the qualifiers in March. Two players "
    "were injured in the second half and will miss the next camp, the federation said."
)


def test_a_lightly_edited_republication_is_a_near_duplicate() -> None:
    edited = (
        "ASTANA, 14 May. "
        + RELEASE.replace("on Tuesday", "on 14 May").replace("next spring", "in April")
        + " Press contact: press@example.org."
    )
    assert is_near_duplicate(signature(RELEASE), signature(edited))


def test_an_unrelated_story_is_not_a_near_duplicate() -> None:
    assert similarity(signature(RELEASE) or "", signature(OTHER) or "") < 0.1
    assert not is_near_duplicate(signature(RELEASE), signature(OTHER))


def test_a_short_text_has_no_signature() -> None:
    assert signature("Press release") is None
    assert not is_near_duplicate(None, signature(RELEASE))


def test_signatures_are_stable_across_runs() -> None:
    # Stored signatures must compare with tomorrow's: the hash family is fixed.
    first = signature(RELEASE)
    assert first is not None
    assert len(first) == 16 * HASHES
    # Pinned: a change of the hash family would make every stored signature useless.
    assert first.startswith("002e701b9369ad990176e390b589854d")
    assert first == signature(RELEASE.upper())


def test_most_similar_picks_the_stored_original_it_duplicates() -> None:
    rows = [
        (1, bytes.fromhex(signature(OTHER) or "")),
        (2, bytes.fromhex(signature(RELEASE) or "")),
    ]
    assert most_similar(signature(RELEASE + " Updated."), from_rows(rows)) == 2
    assert most_similar(signature(OTHER.replace("Georgia", "Armenia")), from_rows(rows[1:])) is None
    # Of two equally close, the later one; none when nothing is stored.
    twice = from_rows([(3, rows[1][1]), (4, rows[1][1])])
    assert most_similar(signature(RELEASE), twice) == 4
    assert most_similar(signature(RELEASE), from_rows([])) is None


def _reference_signature(text: str) -> str:
    """The signature's definition, one value at a time: the stored signatures were made so,
    and a faster computation must give the same values or old and new never compare."""
    import hashlib

    from monitor.clean.dedupe import _FAMILY, SHINGLE_WORDS, normalise_text

    words = normalise_text(text).split()
    shingles = {
        " ".join(words[i : i + SHINGLE_WORDS])
        for i in range(max(1, len(words) - SHINGLE_WORDS + 1))
    }
    hashes = [
        int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "big") for s in shingles
    ]
    mask = (1 << 64) - 1
    return "".join(
        f"{min(((h ^ salt) * factor) & mask for h in hashes):016x}" for salt, factor in _FAMILY
    )


def test_signatures_keep_the_values_of_their_definition() -> None:
    russian = "Делегация ЕС провела диалог по правам человека в Астане. " * 8
    for text in (STORY, STORY * 3, russian):
        assert signature(text) == _reference_signature(text)


def test_normalising_drops_exactly_the_punctuation_of_every_plane() -> None:
    import random
    import unicodedata

    from monitor.clean.dedupe import normalise_text

    def reference(text: str) -> str:  # the definition, character by character
        text = unicodedata.normalize("NFKC", text).casefold()
        kept = "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
        return " ".join(kept.split())

    rng = random.Random(4)
    samples = [
        # quotes, dashes and full-width letters of every kind are what this is about
        "«Ёлка» — это… “quoted” ‘x’ ¿qué? ¡sí! 《中文》、。 ﬁ Ｋ ½ \u00a0 word\u2009word",  # noqa: RUF001
        "Beyond the BMP: \U00010100 \U00010101 (Aegean word separators), \U0001d538.",
    ]
    for top in (0x3000, 0x10000, 0x30000):
        chars = (chr(rng.randrange(0x20, top)) for _ in range(4000))
        samples.append("".join(c for c in chars if not 0xD800 <= ord(c) <= 0xDFFF))
    for text in samples:
        assert normalise_text(text) == reference(text)
