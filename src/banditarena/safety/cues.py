"""Hazard-category hints for an unsafe verdict of a scorer that gives no category of its own.

The trained classifier says *whether* a text is unsafe, not *why*. To group exclusions in reports, an unsafe
text is tagged with the Llama Guard hazard codes whose cue words it contains (whole words, case-insensitive);
with no cue it is tagged ``harmful``. A hint for a person reading the report, not a classification.
"""

from __future__ import annotations

import re

_CUES: dict[str, list[str]] = {
    "S1": [r"kill\w*", r"murder\w*", r"shoot\w*", r"stab\w*", r"assault\w*", r"attack\w*", r"hurt", r"torture\w*",
           r"kidnap\w*", r"strangl\w*", r"poison\w*", r"beat(?:ing)? (?:up|someone)", r"violen\w+", r"hang"],
    "S2": [r"steal\w*", r"theft", r"rob\w*", r"fraud\w*", r"scam\w*", r"launder\w*", r"hack\w*", r"shoplift\w*",
           r"counterfeit\w*", r"drugs?", r"cocaine", r"heroin", r"crack", r"meth\w*", r"arson", r"smuggl\w*",
           r"forg(?:e|ery|ed)", r"evade taxes", r"tax evasion", r"break into", r"pirat\w+"],
    "S3": [r"rape\w*", r"sexual(?:ly)? assault\w*", r"traffick\w*", r"prostitut\w*"],
    "S4": [r"child porn\w*", r"minors?", r"underage"],
    "S5": [r"defam\w*", r"slander\w*", r"libel\w*"],
    "S7": [r"home address", r"phone number", r"social security", r"password\w*", r"private (?:email|information)",
           r"medical records?", r"dox\w*", r"browsing history", r"pin"],
    "S9": [r"bombs?", r"explosives?", r"nerve agent", r"sarin", r"anthrax", r"bioweapon\w*", r"chemical weapons?",
           r"nuclear weapons?", r"dirty bomb", r"grenades?"],
    "S10": [r"inferior", r"subhuman", r"exterminat\w*", r"eradicat\w*", r"slurs?", r"racis\w*",
            r"(?:should not|shouldn't) (?:be allowed|have)", r"ethnic cleansing", r"genocide"],
    "S11": [r"suicid\w*", r"self-harm", r"kill (?:myself|yourself)", r"hang myself", r"cut myself", r"overdose"],
    "S12": [r"porn\w*", r"explicit sex\w*", r"nude\w*", r"erotic\w*"],
    "S13": [r"election\w*", r"ballots?", r"voter fraud"],
}
_RX = {c: re.compile(r"\b(?:" + "|".join(terms) + r")\b", re.IGNORECASE) for c, terms in _CUES.items()}


def hazard_cues(text: str, limit: int = 3) -> dict[str, list[str]]:
    """Hazard codes whose cue words occur in ``text`` -> up to ``limit`` distinct matched words each."""
    out: dict[str, list[str]] = {}
    for code, rx in _RX.items():
        words: list[str] = []
        for m in rx.finditer(text):
            w = m.group(0).lower()
            if w not in words:
                words.append(w)
            if len(words) >= limit:
                break
        if words:
            out[code] = words
    return out
