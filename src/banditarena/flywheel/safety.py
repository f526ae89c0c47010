"""Safety filtering of generated training data.

The default filter runs offline with no model: it flags personal data (PII) with regular expressions
checked beyond the pattern where possible (Luhn for card numbers, valid IPv4 octets), and toxic text with a
small lexicon of slurs, threats and explicit harm instructions matched on word boundaries. It is a
conservative first line, not a classifier: every flag records its reason so a person can audit what was
excluded, and the filter is pluggable (:class:`SafetyFilter` protocol) for a real classifier.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class SafetyVerdict:
    ok: bool
    reasons: list[str] = field(default_factory=list)


class SafetyFilter(Protocol):
    name: str

    def check(self, text: str) -> SafetyVerdict: ...


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

_TOXIC_TERMS = [
    # threats and incitement
    r"i will kill you", r"i'?m going to kill you", r"kill yourself", r"kys", r"go die",
    r"you should die", r"i hope you die",
    # harm instructions
    r"how to make (?:a )?(?:pipe )?bomb", r"build (?:a )?bomb", r"make meth(?:amphetamine)?",
    r"synthesi[sz]e (?:sarin|vx|ricin|anthrax)",
    # slurs (a short, non-exhaustive list; matched as whole words)
    r"fag(?:got)?s?", r"n[i1]gg(?:er|a)s?", r"k[i1]kes?", r"sp[i1]cs?", r"ch[i1]nks?", r"retards?", r"trann(?:y|ies)",
    # harassment
    r"worthless piece of shit", r"you (?:stupid|dumb) (?:bitch|cunt)",
]
_TOXIC = re.compile(r"\b(?:" + "|".join(_TOXIC_TERMS) + r")\b", re.IGNORECASE)


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


class DefaultSafetyFilter:
    """Offline PII + toxicity filter. ``pii``/``toxicity`` switch the two halves."""

    name = "default-offline-v1"

    def __init__(self, *, pii: bool = True, toxicity: bool = True) -> None:
        self.pii = pii
        self.toxicity = toxicity

    def check(self, text: str) -> SafetyVerdict:
        reasons: list[str] = []
        if self.pii:
            reasons += self._pii(text)
        if self.toxicity:
            m = _TOXIC.search(text)
            if m:
                reasons.append(f"toxicity: '{m.group(0)}'")
        return SafetyVerdict(ok=not reasons, reasons=reasons)

    @staticmethod
    def _pii(text: str) -> list[str]:
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


def filter_rows(texts: Iterable[str], flt: SafetyFilter | None = None) -> list[SafetyVerdict]:
    flt = flt or DefaultSafetyFilter()
    return [flt.check(t) for t in texts]
