"""Generated hints that are safe for children, with a template hint as the fallback.

A hint is asked from a model backend (the embedded SmolLM2-135M-Instruct by default, an OpenAI-compatible
endpoint in real use, both through :func:`banditarena.models.make_backend`). Before a child sees it, the text
must pass, in order:

1. the backend answered (a backend that is down, times out or errors counts as a failure);
2. it does not give the answer away (the answer's number does not appear in it);
3. every small sum it states is true ("1 + 2 = 4" or "6 is 3 + 4" would teach a child something false);
4. it is about the problem (it names a number or a maths idea: add, take away, tens, ones, groups...),
   not small talk ("I'm not sure, but I can help you");
5. the safety scorer says ``"safe"`` (``"unsafe"`` and ``"uncertain"`` are rejected);
6. its reading grade (Flesch-Kincaid) is at most the learner's grade plus ``grade_margin``.

Otherwise the activity's template hint is shown, and the rejection with its reasons is returned so it can be
logged and shown to the teacher.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

from banditarena.curriculum.items import Item, format_number
from banditarena.curriculum.readability import reading_grade
from banditarena.curriculum.safety import check_texts, default_safety_scorer, scorer_name

SYSTEM = ("You are a kind maths tutor for a child in grade {grade}. Reply with one short hint in easy words "
          "that helps the child take the first step. Never tell the answer.")
USER = "{question}\nI think it is {answer}. Can you give me a hint?"


#: The checks in order; a rejected hint records the first one it failed.
STAGES = ("backend", "empty", "wrongmath", "offtopic", "giveaway", "safety", "readability")


@dataclass
class HintResult:
    text: str                      # what the learner sees
    source: str                    # "model" or "template"
    generated: str | None = None   # the model's text (None when the backend failed)
    reasons: list[str] = field(default_factory=list)   # why the generated text was rejected
    stage: str | None = None       # first failed check: backend|empty|wrongmath|offtopic|giveaway|safety|readability
    grade_level: float | None = None
    safety: str | None = None      # the scorer's verdict
    latency_s: float = 0.0
    error: str | None = None       # backend error message

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def clean_hint(text: str, max_chars: int) -> str:
    """The first one or two sentences of a model's answer, without labels, quotes or markup."""
    t = re.sub(r"^\s*(?:hint|tip|answer)\s*[:\-]\s*", "", text.strip(), flags=re.IGNORECASE)
    t = t.replace("**", "").replace("#", "").strip().strip('"').strip()
    t = " ".join(t.split())
    parts = re.split(r"(?<=[.!?])\s+", t)
    out = " ".join(parts[:2]).strip()
    if len(out) > max_chars:
        cut = out[:max_chars]
        out = cut[: cut.rfind(" ")] if " " in cut else cut
        out = out.rstrip(",;: ") + "."
    return out


_MATH_WORDS = re.compile(
    r"\b(?:add\w*|plus|sum|total|together|take|away|subtract\w*|minus|less|fewer|more|left|differen\w*|"
    r"count\w*|tens?|ones|hundreds?|carry\w*|borrow\w*|swap|times|multipl\w*|groups?|divid\w*|share\w*|"
    r"equal\w*|half|double|each|digits?|number\w*|step\w*|skip|bonds?|make|split|first|then)\b", re.IGNORECASE)


_NUMBER = re.compile(r"(?<![\d.])\d+(?:\.\d+)?(?!\.?\d)")


_OP = r"([+\-x×*/÷]|plus|minus|times|take away)"
_EQ = r"(?:=|is|equals|makes|are)"
_SUM_LEFT = re.compile(rf"(?<![\d.])(\d+(?:\.\d+)?)\s*{_OP}\s*(\d+(?:\.\d+)?)\s*{_EQ}\s*(\d+(?:\.\d+)?)(?![\d.]\d)",
                       re.IGNORECASE)
_SUM_RIGHT = re.compile(rf"(?<![\d.])(\d+(?:\.\d+)?)\s*{_EQ}\s*(\d+(?:\.\d+)?)\s*{_OP}\s*(\d+(?:\.\d+)?)(?![\d.]\d)",
                        re.IGNORECASE)


def _apply_op(a: float, op: str, b: float) -> float | None:
    op = op.lower()
    if op in ("+", "plus"):
        return a + b
    if op in ("-", "minus", "take away"):
        return a - b
    if op in ("x", "×", "*", "times"):
        return a * b
    if b == 0:
        return None
    return a / b


def false_sums(text: str) -> list[str]:
    """The small equations stated in ``text`` that are false (``1 + 2 = 4``, ``6 is 3 + 4``)."""
    t = text.replace(",", "")
    bad = []
    for m in _SUM_LEFT.finditer(t):
        v = _apply_op(float(m.group(1)), m.group(2), float(m.group(3)))
        if v is not None and abs(v - float(m.group(4))) > 1e-9:
            bad.append(m.group(0).strip())
    for m in _SUM_RIGHT.finditer(t):
        v = _apply_op(float(m.group(2)), m.group(3), float(m.group(4)))
        if v is not None and abs(v - float(m.group(1))) > 1e-9:
            bad.append(m.group(0).strip())
    return bad


def on_topic(text: str) -> bool:
    """True when ``text`` names a number or a maths idea (a hint, not small talk)."""
    return bool(re.search(r"\d", text) or _MATH_WORDS.search(text))


def gives_away(text: str, item: Item) -> bool:
    """True when the answer's number appears in ``text`` (as a number, not inside a longer one) and is not
    already part of the question (a hint may repeat the problem's own numbers)."""
    ans = format_number(item.answer)
    nums = _NUMBER.findall(text.replace(",", ""))
    in_question = _NUMBER.findall(item.question.replace(",", ""))
    return ans in nums and ans not in in_question


def _quiet_transformers() -> None:
    """No weight-loading progress bars or info logs from transformers in the tutor's console."""
    import contextlib

    with contextlib.suppress(Exception):  # transformers missing or changed: nothing to quiet
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()


class HintService:
    """Hints for learners: generated, checked, or the template.

    Args:
        backend: a :class:`banditarena.models.Backend` (``None``: template hints only).
        scorer: the safety scorer (default: :func:`~banditarena.curriculum.safety.default_safety_scorer`).
        max_tokens, temperature: decoding.
        timeout_s: longest wait for the backend before the template is used.
        max_chars: generated hints are cut to this many characters.
        grade_margin: reading grades allowed above the learner's grade.
    """

    def __init__(self, backend: Any = None, scorer: Any = None, *, max_tokens: int = 48, temperature: float = 0.0,
                 timeout_s: float = 60.0, max_chars: int = 300, grade_margin: float = 0.0) -> None:
        self.backend = backend
        self.scorer = scorer if scorer is not None else default_safety_scorer()
        self.max_tokens = int(max_tokens)
        self.temperature = float(temperature)
        self.timeout_s = float(timeout_s)
        self.max_chars = int(max_chars)
        self.grade_margin = float(grade_margin)
        self.counts: dict[str, int] = dict.fromkeys(
            ("requests", "model", "template", *STAGES), 0)

    @property
    def scorer_name(self) -> str:
        return scorer_name(self.scorer)

    def _requests(self, items: list[Item], answers: list[str | None], grades: list[int]) -> tuple[list[Any], Any]:
        from banditarena.models import ChatRequest
        from banditarena.types import Strategy

        reqs = []
        for k, (it, ans, g) in enumerate(zip(items, answers, grades)):
            msgs = [{"role": "system", "content": SYSTEM.format(grade=g)},
                    {"role": "user", "content": USER.format(question=it.question,
                                                            answer=(ans or "?").strip()[:40])}]
            reqs.append(ChatRequest(prompt_id=f"hint-{it.id}-{k}", turn=0, messages=msgs, seed=k))
        strategy = Strategy(name="hint", temperature=self.temperature, max_tokens=self.max_tokens)
        return reqs, strategy

    def _generate(self, items: list[Item], answers: list[str | None], grades: list[int]
                  ) -> list[tuple[str | None, str | None]]:
        """(text, error) per request."""
        if self.backend is None:
            return [(None, "no hint backend configured")] * len(items)
        reqs, strategy = self._requests(items, answers, grades)

        box: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:  # a daemon thread: a slow backend is abandoned at the deadline, never waited for
            try:
                with warnings.catch_warnings():  # quiet console: no third-party deprecation chatter
                    warnings.simplefilter("ignore")
                    if getattr(self.backend, "kind", "") == "local":
                        _quiet_transformers()
                    box["comps"] = asyncio.run(self.backend.acomplete(reqs, strategy))
            except BaseException as exc:  # noqa: BLE001 - a broken backend must never break a lesson
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=work, name="hint-backend", daemon=True).start()
        if not done.wait(self.timeout_s):
            return [(None, f"backend timed out after {self.timeout_s:g} s")] * len(items)
        if "error" in box:
            exc = box["error"]
            return [(None, f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}")] * len(items)
        comps = box["comps"]
        out: list[tuple[str | None, str | None]] = []
        for c in comps:
            out.append((None, c.error) if c.error else (c.text, None))
        return out

    def hints(self, items: list[Item], templates: list[str], answers: list[str | None], grades: list[int]
              ) -> list[HintResult]:
        """Hints for several learners at once (one backend call); see :meth:`hint`."""
        t0 = time.perf_counter()
        gens = self._generate(items, answers, grades)
        latency = (time.perf_counter() - t0) / max(len(items), 1) if len(items) > 1 else time.perf_counter() - t0
        results: list[HintResult | None] = [None] * len(items)
        cleaned: list[tuple[int, str]] = []
        for k, ((text, err), item) in enumerate(zip(gens, items)):
            self.counts["requests"] += 1
            if text is None:
                results[k] = HintResult(templates[k], "template", None, [f"backend failed: {err}"], "backend",
                                        latency_s=latency, error=err)
                continue
            c = clean_hint(text, self.max_chars)
            if not c:
                results[k] = HintResult(templates[k], "template", text, ["the model wrote nothing usable"], "empty",
                                        latency_s=latency)
            elif false_sums(c):
                results[k] = HintResult(templates[k], "template", c, [f"states a false sum: {false_sums(c)[0]}"],
                                        "wrongmath", latency_s=latency)
            elif not on_topic(c):
                results[k] = HintResult(templates[k], "template", c, ["off topic: names no number or maths idea"],
                                        "offtopic", latency_s=latency)
            elif gives_away(c, item):
                results[k] = HintResult(templates[k], "template", c, [f"gives away the answer ({item.answer_text})"],
                                        "giveaway", latency_s=latency)
            else:
                cleaned.append((k, c))
        verdicts = check_texts(self.scorer, [c for _, c in cleaned])
        for (k, c), v in zip(cleaned, verdicts):
            g = reading_grade(c)
            limit = grades[k] + self.grade_margin
            if v.verdict != "safe":
                why = "; ".join(f"{cat}: {r}" for cat, r in v.categories.items()) or "no reason given"
                results[k] = HintResult(templates[k], "template", c, [f"safety {v.verdict}: {why}"], "safety", g,
                                        v.verdict, latency)
            elif g > limit:
                results[k] = HintResult(templates[k], "template", c,
                                        [f"reading grade {g:.1f} is above the learner's grade {limit:g}"],
                                        "readability", g, v.verdict, latency)
            else:
                results[k] = HintResult(c, "model", c, [], None, g, v.verdict, latency)
        final = [r for r in results if r is not None]
        for r in final:
            self.counts[r.source] += 1
            if r.stage:
                self.counts[r.stage] += 1
        return final

    def hint(self, item: Item, template: str, answer: str | None, grade: int) -> HintResult:
        """One hint for a learner of ``grade`` who answered ``answer`` (or nothing yet) on ``item``."""
        return self.hints([item], [template], [answer], [grade])[0]


def build_hint_service(spec: Any, base: Any = None, scorer: Any = None) -> HintService:
    """A :class:`HintService` from a recipe's ``hints`` section (backend via the models factory)."""
    from banditarena.models import make_backend

    backend = None
    if spec.enabled:
        ep = spec.endpoint
        backend = make_backend(ep.backend, ep.model, **{k: v for k, v in ep.options(base).items() if v is not None})
    return HintService(backend, scorer, max_tokens=spec.max_tokens, temperature=spec.temperature,
                       timeout_s=spec.timeout_s, max_chars=spec.max_chars, grade_margin=spec.grade_margin)


def hint_trial(curriculum: Any, service: HintService, n: int, grade: int | None = None, seed: int = 0,
               batch: int = 8, wrong_answers: bool = True) -> tuple[list[HintResult], list[Item]]:
    """Ask ``n`` hints for problems drawn evenly over the curriculum's activities, ``batch`` at a time, as a
    learner of ``grade`` who gave a wrong answer (the answer plus one) or none. Returns results and items."""
    import numpy as np

    rng = np.random.default_rng(seed)
    items = [curriculum.item(k % curriculum.n_activities, rng) for k in range(n)]
    templates = [curriculum.activities[curriculum.index[it.activity]].hint for it in items]
    answers = [format_number(it.answer + 1) if wrong_answers else None for it in items]
    g = [grade if grade is not None else curriculum.activities[curriculum.index[it.activity]].grade for it in items]
    out: list[HintResult] = []
    for s in range(0, n, batch):
        out += service.hints(items[s:s + batch], templates[s:s + batch], answers[s:s + batch], g[s:s + batch])
    return out, items
