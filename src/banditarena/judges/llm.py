"""Pairwise LLM judge over any backend (Arena Learning scores, optional Arena-Hard verdict).

The judge sees the whole dialogue: every user turn and each assistant's answer to it (for a multi-turn
prompt, each assistant's conversation is shown in full, because its later answers build on its earlier
ones). It writes a short rationale, a 1-10 score for each assistant and, with ``verdict=True``, the
five-level verdict ``[[A>>B]] [[A>B]] [[A=B]] [[B>A]] [[B>>A]]``.

Output that cannot be parsed (see :mod:`banditarena.judges.parsing`) is kept raw and asked for once more,
with a short reminder of the format appended to the conversation. If the second reply cannot be parsed
either, the judgment is ``ok=False, attempts=2`` with the error: an invalid judgment, never a tie.

A failed backend call (``Completion.error``) or a failed generation gives ``ok=False`` with an error that
starts with :data:`RETRYABLE_PREFIX`; :func:`is_retryable` tells the arena to judge it again on resume
instead of counting it as invalid output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from banditarena.judges.base import Judge, JudgeRequest
from banditarena.judges.parsing import PARSER_VERSION, ParsedJudgment, format_reminder, parse_judgment
from banditarena.models.base import Backend, ChatRequest
from banditarena.types import Completion, Generation, Judgment, Message, Prompt, Strategy, stable_hash

#: Errors that begin with this are transient (backend down, generation missing): judge again on resume.
RETRYABLE_PREFIX = "retryable: "
#: Separates the first reply from the reply to the reminder in ``Judgment.raw``.
RETRY_SEPARATOR = "\n\n===== retry after format reminder =====\n\n"

SYSTEM_PROMPT = """You are an impartial expert judge of AI assistants. You will read a conversation in which a \
user talks to two different AI assistants, Assistant A and Assistant B. Judge how well each assistant served the \
user over the whole conversation. Correctness comes first: check facts, code and arithmetic yourself. Then \
helpfulness, relevance to what was asked, completeness, clarity and safety. A longer answer is not a better \
answer: padding, repetition and unrequested content are flaws. Neither the order in which the assistants are \
shown nor their names may influence you.

Score each assistant from 1 to 10: 10 = excellent, nothing to improve; 7 = good with minor flaws; \
4 = partly useful with clear errors or omissions; 1 = useless, wrong or harmful.{verdict_help}

Reply in exactly this format and write nothing else:
Rationale: <two or three sentences comparing the two assistants>
Score A: <a number from 1 to 10 for Assistant A>
Score B: <a number from 1 to 10 for Assistant B>{verdict_line}"""

VERDICT_HELP = """ Then give your verdict: [[A>>B]] if Assistant A is much better, [[A>B]] if Assistant A is \
slightly better, [[A=B]] if they are about equally good, [[B>A]] if Assistant B is slightly better, [[B>>A]] if \
Assistant B is much better."""
VERDICT_LINE = "\nVerdict: <exactly one of [[A>>B]], [[A>B]], [[A=B]], [[B>A]], [[B>>A]]>"

SINGLE_TURN_TEMPLATE = """{context}[User question]
{question}

[The start of Assistant A's answer]
{answer_a}
[The end of Assistant A's answer]

[The start of Assistant B's answer]
{answer_b}
[The end of Assistant B's answer]
{reference}
Judge the two answers now, in the required format."""

MULTI_TURN_TEMPLATE = """{context}[The start of the conversation with Assistant A]
{dialogue_a}
[The end of the conversation with Assistant A]

[The start of the conversation with Assistant B]
{dialogue_b}
[The end of the conversation with Assistant B]
{reference}
Judge the two assistants over the whole conversation now, in the required format."""

REFERENCE_BLOCK = """
[The start of a reference answer to the last user turn, for your guidance]
{reference}
[The end of the reference answer]
"""

PROMPT_VERSION = "pairwise-prompt-1"
#: The LLM judge's decoding unless told otherwise (recipes and the library alike): greedy, 512 new tokens.
DEFAULT_JUDGE_STRATEGY = Strategy(name="judge", temperature=0.0, max_tokens=512)


def _truncate(text: str, limit: int) -> str:
    if limit <= 0 or len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit} more characters cut for the judge ...]"


def is_retryable(judgment: Judgment) -> bool:
    """True when the judgment failed for a transient reason (backend error, missing generation).

    Such a judgment must not be cached as final; the arena judges it again on resume. Invalid judge
    *output* (unparsable after the retry) is final and is not retryable.
    """
    return (not judgment.ok) and bool(judgment.error) and judgment.error.startswith(RETRYABLE_PREFIX)


class PairwiseLLMJudge(Judge):
    """An LLM that compares two answers and scores each from 1 to 10 (optionally with a verdict).

    Transient failures (backend error, failed generation) come back with ``ok=False``, an empty ``raw``
    and an error starting with :data:`RETRYABLE_PREFIX` (see :func:`is_retryable`). Invalid output always
    keeps its ``raw`` text.

    Parameters
    ----------
    backend:
        Any :class:`banditarena.models.base.Backend` (openai-compatible endpoint, local transformers,
        or a test double). It is called as ``await backend.acomplete([ChatRequest(...)], strategy)``.
    name:
        Judge name stored with every judgment (default ``"llm:<model>"``, ``+verdict`` when asked).
    strategy:
        Decoding for the judge (default :data:`DEFAULT_JUDGE_STRATEGY`: greedy, 512 new tokens).
    verdict:
        Also ask for the five-level Arena-Hard verdict; the verdict then decides the winner of one order.
    max_answer_chars:
        Each assistant turn (and the reference) is cut to this many characters before it is shown
        (0 = no limit); the cut is marked in the text the judge sees.

    ``version`` is a hash of the prompt templates, the reminder and :data:`PARSER_VERSION`: changing the
    prompt or the parser changes every cache key. ``identity()`` adds the backend's identity, the
    decoding strategy and the options above.
    use_reference:
        Show ``Prompt.reference`` to the judge as guidance when the prompt has one.
    """

    @property
    def batch_size(self) -> int:
        """Requests per ``ajudge`` call the arena sends: an in-process model's batch; one for an endpoint (its
        backend limits concurrency per endpoint), so each judgment is stored the moment it is made."""
        return int(getattr(self.backend, "batch_size", 1))

    def __init__(
        self,
        backend: Backend,
        *,
        name: str | None = None,
        strategy: Strategy | None = None,
        verdict: bool = False,
        max_answer_chars: int = 4000,
        use_reference: bool = False,
    ) -> None:
        if not isinstance(backend, Backend):
            raise TypeError(f"backend must be a banditarena Backend, got {type(backend).__name__}")
        if max_answer_chars < 0:
            raise ValueError("max_answer_chars must be >= 0 (0 = no limit)")
        self.backend = backend
        self.verdict = bool(verdict)
        self.max_answer_chars = int(max_answer_chars)
        self.use_reference = bool(use_reference)
        self.strategy = strategy or DEFAULT_JUDGE_STRATEGY
        self.name = name or f"llm:{backend.model}" + ("+verdict" if self.verdict else "")
        self.system_prompt = SYSTEM_PROMPT.format(
            verdict_help=VERDICT_HELP if self.verdict else "", verdict_line=VERDICT_LINE if self.verdict else ""
        )
        self.reminder = format_reminder(self.verdict)
        # The version covers every template and the parser: changing either changes all cache keys.
        self.version = "pw-" + stable_hash(
            [PROMPT_VERSION, PARSER_VERSION, self.system_prompt, SINGLE_TURN_TEMPLATE, MULTI_TURN_TEMPLATE,
             REFERENCE_BLOCK, self.reminder],
            10,
        )

    def attach_store(self, store: Any) -> None:
        """Route the judge's model calls through ``store``'s request cache: both replies of a format retry are
        committed as they arrive, and a resumed run never pays for them again."""
        from banditarena.models.cached import CachedBackend

        inner = self.backend.inner if isinstance(self.backend, CachedBackend) else self.backend
        self.backend = CachedBackend(inner, store, subject=self.name)

    @property
    def model(self) -> str:
        """The judge's underlying model (used by the bias audit for self-preference)."""
        return self.backend.model

    def identity(self) -> dict[str, Any]:
        return {
            **super().identity(),
            "backend": self.backend.identity(),
            "strategy": self.strategy.cache_identity(),
            "verdict": self.verdict,
            "max_answer_chars": self.max_answer_chars,
            "use_reference": self.use_reference,
        }

    # ------------------------------------------------------------------ prompt
    def _dialogue(self, prompt: Prompt, gen: Generation) -> tuple[str, list[tuple[str, str]]]:
        """Context shown once (system prompt, fixed earlier turns) and the (user, answer) turns answered."""
        users = [i for i, m in enumerate(prompt.messages) if m["role"] == "user"]
        answered = users[max(0, len(users) - len(gen.turns)):] if gen.turns else users[-1:]
        first = answered[0] if answered else len(prompt.messages)
        ctx_lines = []
        for m in prompt.messages[:first]:
            role = {"system": "System", "user": "User", "assistant": "Assistant (earlier turn)"}.get(
                m["role"], m["role"])
            ctx_lines.append(f"[{role}]\n{_truncate(m['content'], self.max_answer_chars)}")
        turns = []
        for k, idx in enumerate(answered):
            answer = gen.turns[k] if k < len(gen.turns) else ""
            turns.append((prompt.messages[idx]["content"], _truncate(answer, self.max_answer_chars)))
        context = "[Context shared by both conversations]\n" + "\n\n".join(ctx_lines) + "\n\n" if ctx_lines else ""
        return context, turns

    def build_messages(self, request: JudgeRequest) -> list[Message]:
        """The chat messages sent to the judge for one order (system prompt + the filled template)."""
        p = request.prompt
        context, turns_a = self._dialogue(p, request.first)
        _, turns_b = self._dialogue(p, request.second)
        ref = ""
        if self.use_reference and p.reference:
            ref = REFERENCE_BLOCK.format(reference=_truncate(p.reference, self.max_answer_chars))
        if len(turns_a) <= 1 and len(turns_b) <= 1:
            question = turns_a[0][0] if turns_a else (p.user_turns[-1] if p.user_turns else "")
            body = SINGLE_TURN_TEMPLATE.format(
                context=context, question=_truncate(question, self.max_answer_chars),
                answer_a=turns_a[0][1] if turns_a else "", answer_b=turns_b[0][1] if turns_b else "",
                reference=ref,
            )
        else:
            def dialogue(turns: list[tuple[str, str]], label: str) -> str:
                return "\n\n".join(
                    f"[User, turn {i + 1}]\n{_truncate(u, self.max_answer_chars)}\n\n"
                    f"[Assistant {label}, turn {i + 1}]\n{a}"
                    for i, (u, a) in enumerate(turns)
                )

            body = MULTI_TURN_TEMPLATE.format(
                context=context, dialogue_a=dialogue(turns_a, "A"), dialogue_b=dialogue(turns_b, "B"), reference=ref
            )
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": body}]

    # ------------------------------------------------------------------ judging
    def _judgment(self, request: JudgeRequest, key: str, **fields: Any) -> Judgment:
        return Judgment(
            judge=self.name, prompt_id=request.prompt.id, first=request.first.contestant,
            second=request.second.contestant, cache_key=key, **fields,
        )

    def _from_parsed(self, request: JudgeRequest, key: str, parsed: ParsedJudgment, raw: str,
                     attempts: int) -> Judgment:
        if parsed.ok:
            return self._judgment(request, key, score_first=parsed.score_a, score_second=parsed.score_b,
                                  verdict=parsed.verdict, rationale=parsed.rationale, raw=raw, ok=True,
                                  attempts=attempts)
        return self._judgment(request, key, raw=raw, ok=False, attempts=attempts,
                              error=f"unparsable judge output: {parsed.error}")

    async def ajudge(
        self, requests: list[JudgeRequest], progress: Callable[[int], None] | None = None
    ) -> list[Judgment]:
        """Judge every request (one order each), retrying unparsable output once with a format reminder."""
        out: list[Judgment | None] = [None] * len(requests)
        keys = [self.cache_key(r) for r in requests]
        todo: list[int] = []
        for i, r in enumerate(requests):
            bad = [g for g in (r.first, r.second) if not g.ok]
            if bad:
                out[i] = self._judgment(r, keys[i], ok=False, attempts=0,
                                        error=f"{RETRYABLE_PREFIX}generation of '{bad[0].contestant}' for prompt "
                                              f"'{r.prompt.id}' failed: {bad[0].error}")
            else:
                todo.append(i)
        if progress and len(todo) < len(requests):
            progress(len(requests) - len(todo))

        messages = {i: self.build_messages(requests[i]) for i in todo}
        first = await self._complete([(i, messages[i]) for i in todo], requests, keys)
        retry: list[int] = []
        parsed1: dict[int, ParsedJudgment] = {}
        for i, comp in zip(todo, first):
            r = requests[i]
            if not comp.ok:
                out[i] = self._judgment(r, keys[i], ok=False, attempts=1,
                                        error=f"{RETRYABLE_PREFIX}judge backend failed: {comp.error}")
                continue
            parsed1[i] = parse_judgment(comp.text, verdict=self.verdict)
            if parsed1[i].ok:
                out[i] = self._from_parsed(r, keys[i], parsed1[i], comp.text, attempts=1)
            else:
                retry.append(i)
        if progress and len(todo) - len(retry):
            progress(len(todo) - len(retry))

        if retry:
            raw1 = {i: c.text for i, c in zip(todo, first)}
            second = await self._complete(
                [(i, [*messages[i], {"role": "assistant", "content": raw1[i]},
                      {"role": "user", "content": self.reminder}]) for i in retry],
                requests, keys,
            )
            for i, comp in zip(retry, second):
                r = requests[i]
                if not comp.ok:
                    out[i] = self._judgment(r, keys[i], raw="", ok=False, attempts=2,
                                            error=f"{RETRYABLE_PREFIX}judge backend failed on the retry after "
                                                  f"unparsable output: {comp.error}")
                    continue
                raw = raw1[i] + RETRY_SEPARATOR + comp.text
                parsed2 = parse_judgment(comp.text, verdict=self.verdict)
                out[i] = self._from_parsed(r, keys[i], parsed2, raw, attempts=2)
            if progress:
                progress(len(retry))
        return [j for j in out if j is not None]

    async def _complete(self, items: list[tuple[int, list[Message]]], requests: list[JudgeRequest],
                        keys: list[str]) -> list[Completion]:
        if not items:
            return []
        reqs = [
            ChatRequest(prompt_id=requests[i].prompt.id, turn=sum(m["role"] == "user" for m in msgs) - 1,
                        messages=msgs, seed=int(keys[i][:8], 16))
            for i, msgs in items
        ]
        comps = await self.backend.acomplete(reqs, self.strategy)
        if len(comps) != len(reqs):
            raise RuntimeError(f"backend {self.backend.kind} returned {len(comps)} completions for {len(reqs)}")
        return comps

    async def aclose(self) -> None:
        await self.backend.aclose()
