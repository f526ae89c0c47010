"""Local transformers backend: batched chat generation on CPU with a hand-written decode loop.

* Models load lazily, once per process (cached by resolved path and device), in float32.
* Prompts are rendered with the tokenizer's chat template, left-padded, grouped by length into batches of
  ``batch_size``; rows that finish (EOS or ``max_tokens``) are dropped from the batch and the KV cache.
* Sampling (``temperature > 0``) is reproducible per request: each row owns a ``torch.Generator`` seeded
  with :attr:`ChatRequest.seed` (or a seed derived from the request's content when it has none) and draws
  exactly one uniform number per generated token, which picks the token by inverse CDF over the
  top-p-filtered distribution. The random draws of a row therefore never depend on which other requests
  share its batch, or on their order.
* What is and is not guaranteed across batch compositions: the *random stream* is identical, but the logits
  of a row are computed by matrix kernels whose blocking depends on the batch shape and on the padding, so
  they can differ from the un-batched logits in the last bits (~1e-6 relative). The text is identical unless
  such a difference moves a probability across the sampled threshold (or flips a greedy near-tie), which is
  rare; ``batch_size=1`` gives bit-exact results irrespective of what else is requested. The tests check
  identity of batched vs. single text on a random tiny model and on SmolLM2.
* Prompts longer than the model's context keep their last ``max_position_embeddings - max_tokens`` tokens.
* All local generation in a process is serialised through one lock (the CPU cores are shared anyway), and
  runs in a worker thread (``asyncio.to_thread``) so the event loop stays responsive; ``progress`` is
  called once per finished batch.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from banditarena.errors import ConfigError, ModelError
from banditarena.models import hub
from banditarena.models.base import Backend, ChatRequest, request_seed, with_system_prompt
from banditarena.types import Completion, Strategy

_LOAD_LOCK = threading.Lock()
_COMPUTE_LOCK = threading.Lock()
_LOADED: dict[tuple[str, str], tuple[Any, Any]] = {}  # (resolved path, device) -> (model, tokenizer)


def load_model(path: str, device: str = "cpu") -> tuple[Any, Any]:
    """Load (once per process) a causal LM and its tokenizer from a local checkpoint directory."""
    key = (str(Path(path).resolve()), device)
    with _LOAD_LOCK:
        if key in _LOADED:
            return _LOADED[key]
        model, tokenizer = hub.load_hf(path, device=device, what=f"local model at '{path}'")
        if not getattr(tokenizer, "chat_template", None):
            raise ModelError(f"local model at '{path}': its tokenizer has no chat template")
        _LOADED[key] = (model, tokenizer)
        return model, tokenizer


def checkpoint_fingerprint(path: Path) -> str:
    """Cheap content fingerprint of a checkpoint dir: config files in full, weight files by size + ends."""
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        if not f.is_file():
            continue
        h.update(f.name.encode())
        if f.suffix in {".json", ".jinja", ".txt", ".model"}:
            h.update(f.read_bytes())
        elif f.suffix in {".safetensors", ".bin", ".pt", ".gguf"}:
            size = f.stat().st_size
            h.update(str(size).encode())
            with f.open("rb") as fh:
                h.update(fh.read(1 << 20))
                fh.seek(max(0, size - (1 << 20)))
                h.update(fh.read(1 << 20))
    return h.hexdigest()[:16]


def sample_token(logits: Any, generator: Any, temperature: float, top_p: float) -> int:
    """Pick one token id from a 1-D logits row.

    Greedy (argmax) when ``temperature <= 0``; otherwise temperature + nucleus (top-p) sampling with exactly
    one uniform draw from ``generator`` (inverse CDF over the kept tokens, sorted by probability).
    """
    import torch

    if temperature <= 0:
        return int(torch.argmax(logits).item())
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    if top_p >= 1.0:  # no nucleus: inverse CDF in vocabulary order (no sort needed)
        cum = torch.cumsum(probs, dim=-1)
        u = torch.rand(1, generator=generator, dtype=torch.float64) * cum[-1]
        return min(int(torch.searchsorted(cum, u, right=True).item()), probs.numel() - 1)
    sorted_p, order = torch.sort(probs, descending=True)
    cum = torch.cumsum(sorted_p, dim=-1)
    keep = int(torch.searchsorted(cum, torch.tensor([top_p], dtype=cum.dtype)).item()) + 1
    keep = max(1, min(keep, sorted_p.numel()))
    kept = cum[:keep]
    u = torch.rand(1, generator=generator, dtype=torch.float64) * kept[-1]
    idx = int(torch.searchsorted(kept, u, right=True).item())
    return int(order[min(idx, keep - 1)].item())


class LocalBackend(Backend):
    """Generation with a local transformers checkpoint on CPU.

    Args:
        model: ``"smollm2-135m-instruct"`` (the embedded default, or one of its aliases) or a local
            checkpoint directory with a tokenizer that has a chat template.
        batch_size: requests generated together (at most).
        device: torch device (``"cpu"``).
        max_batch_tokens: at most this many padded prompt tokens per batch (rows x longest prompt); longer
            prompts go in smaller batches.
    """

    kind: ClassVar[str] = "local"

    def __init__(self, model: str = hub.DEFAULT_LLM, batch_size: int = 8, device: str = "cpu",
                 max_batch_tokens: int = 4096) -> None:
        super().__init__(model)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ConfigError(f"local backend for model '{model}': batch_size={batch_size!r} must be an integer >= 1")
        if not isinstance(max_batch_tokens, int) or max_batch_tokens < 1:
            raise ConfigError(f"local backend for model '{model}': max_batch_tokens={max_batch_tokens!r} must be >= 1")
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.device = device
        self._is_default = model in hub._ALIASES_LLM
        if not self._is_default and not Path(model).is_dir():
            raise ModelError(
                f"local model '{model}' not found: give a local checkpoint directory or '{hub.DEFAULT_LLM}'"
            )
        self._path: str | None = None
        self._fp: str | None = None

    def __repr__(self) -> str:
        return f"LocalBackend(model={self.model!r}, batch_size={self.batch_size}, device={self.device!r})"

    @property
    def path(self) -> str:
        """The resolved checkpoint directory (converts the embedded default on first use)."""
        if self._path is None:
            self._path = hub.resolve_llm(self.model)
        return self._path

    def identity(self) -> dict[str, Any]:
        """Backend kind and model; a checkpoint path also carries a fingerprint of its files.

        Batch size and device are left out: they do not change what is asked (see the module notes on
        numerics).
        """
        if self._is_default:
            return {"backend": self.kind, "model": hub.DEFAULT_LLM}
        if self._fp is None:
            self._fp = checkpoint_fingerprint(Path(self.model))
        return {"backend": self.kind, "model": str(Path(self.model).resolve()), "fingerprint": self._fp}

    def load(self) -> tuple[Any, Any]:
        """Load the model (once per process) and return ``(model, tokenizer)``."""
        return load_model(self.path, self.device)

    # -- generation ------------------------------------------------------------------------------------------

    def _encode(self, tokenizer: Any, request: ChatRequest, strategy: Strategy) -> list[int]:
        messages = with_system_prompt(request.messages, strategy)
        try:
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # jinja errors (e.g. roles the template rejects)
            raise ModelError(
                f"local model '{self.model}': chat template failed on prompt '{request.prompt_id}': "
                f"{' '.join(str(exc).split())[:200]}"
            ) from exc
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate_ids(
        self, prompts: list[list[int]], seeds: list[int], strategy: Strategy
    ) -> list[list[int]]:
        """Decode one batch of token-id prompts; returns the generated ids per row (EOS excluded)."""
        import torch
        from transformers import DynamicCache

        model, tokenizer = self.load()
        eos = self._eos_ids(model, tokenizer)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (min(eos) if eos else 0)
        limit = int(getattr(model.config, "max_position_embeddings", 0) or 0)
        max_new = int(strategy.max_tokens)
        if max_new < 1:
            return [[] for _ in prompts]
        if limit:
            keep_len = max(1, limit - max_new)
            prompts = [p[-keep_len:] for p in prompts]
        n = len(prompts)
        width = max(len(p) for p in prompts)
        ids = torch.full((n, width), pad, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[i, width - len(p):] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        gens = [torch.Generator(device="cpu").manual_seed(int(s) % (2**63)) for s in seeds]
        out: list[list[int]] = [[] for _ in range(n)]
        active = list(range(n))  # original row of each row currently in the batch
        dev = self.device
        cache = DynamicCache()
        with torch.inference_mode():
            prefill = {"input_ids": ids.to(dev), "attention_mask": mask.to(dev), "position_ids": pos.to(dev),
                       "past_key_values": cache, "use_cache": True}
            try:  # logits of the last position only: a long prompt's full-vocabulary logits would not fit
                res = model(**prefill, logits_to_keep=1)
            except TypeError:  # a model class without logits_to_keep
                res = model(**prefill)
            last_pos = pos[:, -1]
            for step in range(max_new):
                logits = res.logits[:, -1, :].float().cpu()
                nxt = []
                still = []
                for j, row in enumerate(active):
                    tok = sample_token(logits[j], gens[row], strategy.temperature, strategy.top_p)
                    if tok in eos:
                        continue
                    out[row].append(tok)
                    nxt.append(tok)
                    still.append(j)
                if not still or step == max_new - 1:
                    break
                if len(still) < len(active):
                    sel = torch.tensor(still, dtype=torch.long)
                    cache.batch_select_indices(sel.to(dev))
                    mask = mask[sel]
                    last_pos = last_pos[sel]
                    active = [active[j] for j in still]
                mask = torch.cat([mask, torch.ones((len(active), 1), dtype=torch.long)], dim=1)
                last_pos = last_pos + 1
                res = model(
                    input_ids=torch.tensor(nxt, dtype=torch.long)[:, None].to(dev),
                    attention_mask=mask.to(dev),
                    position_ids=last_pos[:, None].to(dev),
                    past_key_values=cache,
                    use_cache=True,
                )
        return out

    @staticmethod
    def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
        eos: set[int] = set()
        for src in (getattr(model, "generation_config", None), tokenizer):
            value = getattr(src, "eos_token_id", None) if src is not None else None
            if isinstance(value, int):
                eos.add(value)
            elif isinstance(value, (list, tuple)):
                eos.update(int(v) for v in value)
        return eos

    def _encode_all(self, requests: list[ChatRequest], strategy: Strategy) -> list[list[int]]:
        _, tokenizer = self.load()
        with _COMPUTE_LOCK:
            return [self._encode(tokenizer, r, strategy) for r in requests]

    def _run_batch(self, prompts: list[list[int]], seeds: list[int], strategy: Strategy) -> list[Completion]:
        _, tokenizer = self.load()
        with _COMPUTE_LOCK:  # also guards the tokenizer, which is not safe to share between threads
            t0 = time.perf_counter()
            ids = self.generate_ids(prompts, seeds, strategy)
            latency = time.perf_counter() - t0
            texts = [tokenizer.decode(row, skip_special_tokens=True) for row in ids]
        return [Completion(text=t, tokens=len(row), latency_s=latency) for t, row in zip(texts, ids)]

    def _batches(self, order: list[int], lengths: list[int]) -> list[list[int]]:
        """Cut the length-sorted requests into batches of at most ``batch_size`` rows and at most
        ``max_batch_tokens`` padded prompt tokens (a single longer prompt goes alone), so one long prompt
        does not pad a whole batch to its length."""
        out: list[list[int]] = []
        cur: list[int] = []
        for i in order:  # ascending length: the newest row is the longest of its batch
            if cur and (len(cur) >= self.batch_size or (len(cur) + 1) * lengths[i] > self.max_batch_tokens):
                out.append(cur)
                cur = []
            cur.append(i)
        if cur:
            out.append(cur)
        return out

    async def acomplete(
        self,
        requests: list[ChatRequest],
        strategy: Strategy,
        progress: Callable[[int], None] | None = None,
    ) -> list[Completion]:
        """Generate every request in batches of similar prompt length; same order as ``requests``.

        ``latency_s`` of a completion is the wall time of the batch it was generated in.
        """
        if not requests:
            return []
        prompts = await asyncio.to_thread(self._encode_all, requests, strategy)
        seeds = [request_seed(r) for r in requests]
        order = sorted(range(len(requests)), key=lambda i: (len(prompts[i]), i))
        results: list[Completion | None] = [None] * len(requests)
        for idx in self._batches(order, [len(p) for p in prompts]):
            done = await asyncio.to_thread(
                self._run_batch, [prompts[i] for i in idx], [seeds[i] for i in idx], strategy
            )
            for i, c in zip(idx, done):
                results[i] = c
            if progress is not None:
                progress(len(idx))
        return [c for c in results if c is not None]
