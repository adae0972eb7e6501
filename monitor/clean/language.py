"""An article's language: the page's declaration when the text bears it out, else detected.

The script of the text has the last word. A Cyrillic-majority text is never English, and a
Latin-majority text is never Russian, whatever a CMS template wrote in <html lang> (EU
delegations' Russian pages often keep the site's lang="en"). Detection is py3langid, its
ranking limited to languages a press monitor meets; on short strings its full list of 140
picks creoles and dialects for plain English.
"""

from __future__ import annotations

#: Languages written in Cyrillic only.
CYRILLIC_ONLY = frozenset({"ru", "uk", "be", "bg", "mk", "mn", "ky", "tg", "ba", "tt"})
#: Languages written in Cyrillic or in Latin, depending on the country and the decade.
CYRILLIC_OR_LATIN = frozenset({"sr", "kk", "uz", "az", "tk", "bs"})
#: Languages detection may answer (ISO 639-1). Each has enough text in py3langid's model to
#: be told apart from its neighbours on a paragraph.
DETECTABLE = frozenset(
    {
        *("en", "fr", "de", "es", "it", "pt", "nl", "da", "sv", "no", "fi", "et", "lv", "lt"),
        *("pl", "cs", "sk", "sl", "hr", "hu", "ro", "el", "ga", "mt", "ca", "eu", "gl", "is"),
        *("sq", "tr", "cy", "ru", "uk", "be", "bg", "mk", "sr", "bs", "kk", "ky", "uz", "tg"),
        *("mn", "az", "tk", "hy", "ka", "tt", "ba", "fa", "ar", "he", "ur", "hi", "bn", "zh"),
        *("ja", "ko", "vi", "th", "id", "ms", "sw", "ta"),
    }
)
#: Characters of text enough to judge the script and the language.
SAMPLE = 4000


def choose_language(declared: str | None, text: str) -> str | None:
    """The declared code when the text's script allows it, else the detected one; None if
    there is no text."""
    sample = text[:SAMPLE]
    if not sample.strip():
        return None
    script = dominant_script(sample)
    if declared and _script_allows(script, declared):
        return declared
    return detect(sample, script)


def dominant_script(text: str) -> str | None:
    """ "cyrillic", "latin" or "other" for the script of most letters; None without letters."""
    cyrillic = latin = other = 0
    for ch in text:
        if not ch.isalpha():
            continue
        if "\u0400" <= ch <= "\u052f":
            cyrillic += 1
        elif ch.isascii() or "\u00c0" <= ch <= "\u024f":
            latin += 1
        else:
            other += 1
    total = cyrillic + latin + other
    if total == 0:
        return None
    for name, count in (("cyrillic", cyrillic), ("latin", latin)):
        if count * 2 > total:
            return name
    return "other"


def detect(text: str, script: str | None = None) -> str | None:
    """The most likely language of ``text`` among ``DETECTABLE`` that fits its script."""
    import py3langid  # loads numpy and a model: only when a page does not say

    for code, _score in py3langid.rank(text):
        if code in DETECTABLE and _script_allows(script, code):
            return str(code)
    return None


def _script_allows(script: str | None, code: str) -> bool:
    if script == "cyrillic":
        return code in CYRILLIC_ONLY or code in CYRILLIC_OR_LATIN
    if script == "latin":
        return code not in CYRILLIC_ONLY
    return True
