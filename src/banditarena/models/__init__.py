"""Model backends: OpenAI-compatible endpoints, local transformers checkpoints, replayed answer files.

``make_backend(kind, model, **options)`` builds one from a contestant's spec. Importing this package is
light: torch/transformers are imported by :class:`LocalBackend` when it first loads a model.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any

from banditarena.errors import ConfigError, ModelError
from banditarena.models.base import Backend, ChatRequest
from banditarena.models.local import LocalBackend
from banditarena.models.openai import OpenAIBackend
from banditarena.models.replay import ReplayBackend, replay_models
from banditarena.types import Contestant

if TYPE_CHECKING:
    from banditarena.config import EndpointConfig

BACKENDS: dict[str, type[Backend]] = {
    OpenAIBackend.kind: OpenAIBackend,
    LocalBackend.kind: LocalBackend,
    ReplayBackend.kind: ReplayBackend,
}


def make_backend(kind: str, model: str, **options: Any) -> Backend:
    """Build the backend ``kind`` (``"openai"``, ``"local"`` or ``"replay"``) for ``model``.

    ``options`` are the backend's keyword arguments (``base_url``, ``api_key_env``, ``path``,
    ``batch_size``...). Raises :class:`ModelError` for an unknown kind and :class:`ConfigError` for an
    unknown or missing option.
    """
    cls = BACKENDS.get(kind)
    if cls is None:
        raise ModelError(f"unknown backend kind '{kind}' for model '{model}' (known: {', '.join(sorted(BACKENDS))})")
    params = inspect.signature(cls.__init__).parameters
    allowed = [p for p in params if p not in ("self", "model")]
    for name in options:
        if name not in allowed:
            raise ConfigError(
                f"backend '{kind}' for model '{model}': unknown option '{name}' (options: {', '.join(allowed)})"
            )
    for name in allowed:
        if params[name].default is inspect.Parameter.empty and name not in options:
            raise ConfigError(f"backend '{kind}' for model '{model}': missing option '{name}'")
    return cls(model, **options)


def backend_from_config(endpoint: EndpointConfig, base_dir: Path | None = None) -> Backend:
    """The backend an :class:`~banditarena.config.EndpointConfig` describes (paths resolve against ``base_dir``)."""
    return make_backend(endpoint.backend, endpoint.model, **endpoint.options(base_dir))


def backend_for(contestant: Contestant) -> Backend:
    """The backend of a contestant (its ``backend``, ``model`` and ``options``)."""
    return make_backend(contestant.backend, contestant.model, **contestant.opts)


__all__ = [
    "BACKENDS",
    "Backend",
    "ChatRequest",
    "LocalBackend",
    "OpenAIBackend",
    "ReplayBackend",
    "backend_for",
    "backend_from_config",
    "make_backend",
    "replay_models",
]
