"""The offline word list and PII patterns (no model): the project's first safety filter, kept for PII.

Personal data (PII) is found with regular expressions checked beyond the pattern where possible (Luhn for card
numbers, valid IPv4 octets said to be an address, placeholder domains and documentation ranges ignored); toxic
text with a small lexicon of threats, slurs and explicit harm instructions matched on word boundaries. It is a
conservative first line, not a classifier: on XSTest it catches none of the unsafe prompts (see
``docs/safety.md``). Every flag keeps its reason so a person can audit what was excluded.

Categories: ``S7`` (privacy) for PII, and the hazard code of the lexicon group for toxic terms (S1 threats,
S2/S9 harm instructions, S10 slurs and harassment, S11 self-harm incitement).
"""

from __future__ import annotations

import re

from banditarena.safety.base import BaseScorer, SafetyResult, check_inputs

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_PHONE = re.compile(r"(?<!\w)(?:\+?\d{1,3}[\s.-]?)?(?:\(\d{3}\)|\d{3})[\s.-]\d{3}[\s.-]\d{4}(?!\w)")
_SSN = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")
_CARD = re.compile(r"\b(?:\d[ -]?){13,19}\b")
_IPV4 = re.compile(r"\b(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\b")
_IP_CONTEXT = re.compile(r"\b(?:ip|ipv4|address|server|host|connect(?:ed|ing)?|login|from|at)\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){3,7}\b")

# Placeholders and documentation ranges are not personal data.
_SAFE_EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "test.com", "domain.com", "email.com")
_SAFE_IP_PREFIXES = ("127.", "0.", "192.0.2.", "198.51.100.", "203.0.113.", "255.", "10.", "192.168.", "172.16.")

# (hazard category, terms): threats, harm instructions, slurs (a short, non-exhaustive list), harassment
_TOXIC_GROUPS: list[tuple[str, list[str]]] = [
    ("S1", [r"i will kill you", r"i'?m going to kill you", r"go die", r"you should die", r"i hope you die"]),
    ("S11", [r"kill yourself", r"kys"]),
    ("S9", [r"how to make (?:a )?(?:pipe )?bomb", r"build (?:a )?bomb", r"synthesi[sz]e (?:sarin|vx|ricin|anthrax)"]),
    ("S2", [r"make meth(?:amphetamine)?"]),
    ("S10", [r"fag(?:got)?s?", r"n[i1]gg(?:er|a)s?", r"k[i1]kes?", r"sp[i1]cs?", r"ch[i1]nks?", r"retards?",
             r"trann(?:y|ies)", r"worthless piece of shit", r"you (?:stupid|dumb) (?:bitch|cunt)"]),
]
_TOXIC_TERMS = [t for _, terms in _TOXIC_GROUPS for t in terms]
_TOXIC = re.compile(r"\b(?:" + "|".join(_TOXIC_TERMS) + r")\b", re.IGNORECASE)
_TOXIC_BY_GROUP = [(cat, re.compile(r"\b(?:" + "|".join(terms) + r")\b", re.IGNORECASE)) for cat, terms in _TOXIC_GROUPS]


def _luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def pii_reasons(text: str) -> list[str]:
    """Reasons (``"pii: ..."``) for the personal data found in ``text``; empty when none."""
    out = []
    for m in _EMAIL.finditer(text):
        if not m.group(0).lower().endswith(_SAFE_EMAIL_DOMAINS):
            out.append(f"pii: email address '{m.group(0)}'")
            break
    if _SSN.search(text):
        out.append("pii: US social security number")
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        if 13 <= len(digits) <= 19 and len(set(digits)) > 1 and _luhn_ok(digits):
            out.append("pii: payment card number (Luhn-valid)")
            break
    for m in _PHONE.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        if len(set(digits)) > 2 and not digits.startswith("555"):
            out.append(f"pii: phone number '{m.group(0).strip()}'")
            break
    for m in _IPV4.finditer(text):
        # dotted quads are also version numbers: only an address said to be one counts
        context = text[max(0, m.start() - 40) : m.start()].lower()
        if (all(int(g) <= 255 for g in m.groups()) and not m.group(0).startswith(_SAFE_IP_PREFIXES)
                and _IP_CONTEXT.search(context)):
            out.append(f"pii: IP address '{m.group(0)}'")
            break
    if _IBAN.search(text):
        out.append("pii: IBAN")
    return out


def toxicity_reasons(text: str) -> list[tuple[str, str]]:
    """(hazard code, reason) for each lexicon group with a match in ``text``."""
    out = []
    for cat, rx in _TOXIC_BY_GROUP:
        m = rx.search(text)
        if m:
            out.append((cat, f"toxicity: '{m.group(0)}'"))
    return out


class WordListScorer(BaseScorer):
    """PII patterns + toxic-term lexicon. Verdict ``unsafe`` (score 1) on any match, else ``safe`` (score 0).

    ``pii``/``toxicity`` switch the two halves. Prompts, when given, are not used: a match is in the text.
    """

    name = "wordlist"
    version = "wordlist-1"

    def __init__(self, *, pii: bool = True, toxicity: bool = True) -> None:
        self.pii = bool(pii)
        self.toxicity = bool(toxicity)

    def identity(self) -> dict:
        return {**super().identity(), "pii": self.pii, "toxicity": self.toxicity}

    def reasons(self, text: str) -> list[tuple[str, str]]:
        """(category, reason) pairs for one text."""
        out: list[tuple[str, str]] = []
        if self.pii:
            out += [("S7", r) for r in pii_reasons(text)]
        if self.toxicity:
            out += toxicity_reasons(text)
        return out

    def score(self, texts: list[str], *, prompts: list[str] | None = None) -> list[SafetyResult]:
        texts, _ = check_inputs(texts, prompts)
        results = []
        for t in texts:
            cats: dict[str, str] = {}
            for cat, why in self.reasons(t):
                cats[cat] = f"{cats[cat]}; {why}" if cat in cats else why
            results.append(SafetyResult("unsafe" if cats else "safe", 1.0 if cats else 0.0, cats, scorer=self.name))
        return results
