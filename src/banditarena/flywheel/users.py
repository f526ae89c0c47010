"""The simulated user: continues a prompt into a multi-turn conversation under a persona (a strategy arm)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from banditarena.config import EndpointConfig
from banditarena.flywheel.recipe import UserSimulatorConfig
from banditarena.store import RunStore
from banditarena.types import Prompt, stable_hash


class UserSimulator:
    """Writes follow-up user turns for a prompt under a persona.

    Follow-ups depend on the prompt and persona only (not on either contestant's answer), so both sides of a
    battle answer the same conversation. Every request goes through the run store's request cache: stored
    the moment it returns, never paid for twice. Conversations that end early (a failed or empty follow-up)
    are counted per persona in :attr:`short`.
    """

    def __init__(self, cfg: UserSimulatorConfig, store: RunStore, base_dir: Path | None) -> None:
        self.cfg = cfg
        self.store = store
        self.base_dir = base_dir
        self.short: dict[str, int] = {}
        self._backend: Any = None

    def _get_backend(self) -> Any:
        if self._backend is None:
            from banditarena.models import backend_from_config
            from banditarena.models.cached import CachedBackend

            ep: EndpointConfig = self.cfg.endpoint
            self._backend = CachedBackend(backend_from_config(ep, self.base_dir), self.store, "user-simulator")
        return self._backend

    async def extend(self, prompt: Prompt, persona: str) -> Prompt:
        """``prompt`` continued to ``turns`` user turns, written under ``persona``."""
        from banditarena.models.base import ChatRequest
        from banditarena.types import Strategy

        backend = self._get_backend()
        system = self.cfg.personas[persona]
        strategy = Strategy(name=f"user:{persona}", system_prompt=system, temperature=0.0, max_tokens=self.cfg.max_tokens)
        turns = list(prompt.user_turns)
        while len(turns) < self.cfg.turns:
            ask = ("Here is the conversation so far, as the user's messages:\n\n" + "\n\n".join(f"User: {t}" for t in turns)
                   + "\n\nWrite the user's next message: one natural follow-up question or request. Output only the message.")
            req = ChatRequest(prompt.id, len(turns), [{"role": "system", "content": system}, {"role": "user", "content": ask}])
            (comp,) = await backend.acomplete([req], strategy)
            if not comp.ok or not comp.text.strip():  # no follow-up: the conversation ends here, counted
                self.short[persona] = self.short.get(persona, 0) + 1
                break
            turns.append(comp.text.strip())
        pid = f"{prompt.id}~{persona}~{stable_hash(turns, 8)}"
        return Prompt(pid, [{"role": "user", "content": t} for t in turns], prompt.category, prompt.cluster,
                      prompt.reference, prompt.source, {**prompt.meta, "persona": persona, "base_prompt": prompt.id})

    def take_warning(self, it: int) -> str | None:
        """The iteration's warning about conversations that ended early (and reset the count)."""
        if not self.short:
            return None
        msg = (f"iteration {it}: the simulated user wrote no follow-up (failed or empty) in "
               + ", ".join(f"{n} {p} conversation(s)" for p, n in sorted(self.short.items()))
               + "; those battles had fewer turns")
        self.short = {}
        return msg

    async def aclose(self) -> None:
        if self._backend is not None:
            await self._backend.aclose()
