"""Thin wrappers over TRL's ``SFTTrainer`` and ``DPOTrainer`` (LoRA via PEFT by default).

Both take TRL's conversational rows (``{"messages": [...]}`` for SFT, ``{"prompt", "chosen", "rejected"}``
for DPO, each a list of chat messages), train on CPU-friendly defaults and return a :class:`TrainResult`:
the path of a plain checkpoint (LoRA merged in, so any local backend can load it), the in-memory merged
model and the per-step training-loss history.

DPO + NLL (the RPO / LASeR objective) uses TRL's own multi-loss option: ``loss_type=["sigmoid", "sft"]``
with ``loss_weights=[1, nll_alpha]``; the ``sft`` term is the mean NLL of the chosen answer.

The reference model defaults to the model as it is when training starts (with LoRA: the adapter-disabled
model), so calling :func:`train_dpo` once per iteration on the previous iteration's output re-syncs the
reference every iteration, as iterative DPO does.

torch / transformers / trl / peft are imported inside the functions.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from banditarena.config import TrainingConfig
from banditarena.errors import DataError, ModelError
from banditarena.types import Message, Prompt

__all__ = ["DEFAULT_LORA_TARGETS", "TrainResult", "TrainingConfig", "load_causal_lm", "preference_row", "sft_row",
           "train", "train_dpo", "train_sft", "world_size"]

DEFAULT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "gate_proj"]


@dataclass
class TrainResult:
    """What a training call produced.

    ``path`` is the saved plain checkpoint (None when ``save=False``); ``model`` the merged in-memory model;
    ``losses`` the training loss at every optimiser step; ``adapter_path`` the saved LoRA adapter, if any.
    """

    path: Path | None
    losses: list[float]
    model: Any = None
    tokenizer: Any = None
    adapter_path: Path | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    n_rows: int = 0
    wall_s: float = 0.0

    @property
    def final_loss(self) -> float:
        """Mean loss over the run (NaN if no step ran)."""
        return float(sum(self.losses) / len(self.losses)) if self.losses else math.nan


def load_causal_lm(model_path: str | os.PathLike[str], dtype: str = "float32", device: str = "cpu") -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer from a local path (or an embedded-default alias).

    ``device``: ``cpu`` (default), ``cuda``, or ``auto`` (the accelerator when torch sees one).
    Raises :class:`ModelError` naming the model when it cannot be loaded.
    """
    from banditarena.models.hub import load_hf

    model, tok = load_hf(str(model_path), dtype=dtype, device="cpu" if _use_cpu(device) else "cuda")
    model.train()
    return model, tok


def _resolve_model(model: Any, tokenizer: Any | None) -> tuple[Any, Any]:
    if isinstance(model, (str, os.PathLike)):
        m, t = load_causal_lm(model)
        return m, tokenizer or t
    if tokenizer is None:
        raise ModelError("an in-memory model needs its tokenizer: pass tokenizer=")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _use_cpu(device: str) -> bool:
    """``auto``: the accelerator when torch sees one (accelerate places the model), else the CPU."""
    if device not in ("auto", "cpu", "cuda"):
        raise ModelError(f"training device '{device}': use auto, cpu or cuda")
    if device == "auto":
        import torch

        return not torch.cuda.is_available()
    return device == "cpu"


def world_size() -> int:
    """Processes training together (``accelerate launch``/torchrun set ``WORLD_SIZE``; 1 in-process)."""
    return max(1, int(os.environ.get("WORLD_SIZE", "1")))


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _common_args(out: Path, cfg: TrainingConfig, epochs: float, lr: float, seed: int) -> dict[str, Any]:
    """The TrainingArguments both trainers share: one log entry per step, no intermediate saves or
    reporting, seeded, no progress bars. ``batch_size`` is the global batch: under a multi-process launch
    each process takes its share, so the optimisation is the same as in one process."""
    world = world_size()
    if cfg.batch_size % world:
        raise DataError(f"training.batch_size {cfg.batch_size} is not divisible by the {world} training processes")
    args = {
        "output_dir": str(out / "trainer"), "num_train_epochs": epochs, "learning_rate": lr,
        "per_device_train_batch_size": cfg.batch_size // world, "gradient_accumulation_steps": cfg.grad_accum,
        "max_length": cfg.max_length, "logging_steps": 1, "save_strategy": "no", "report_to": "none",
        "use_cpu": _use_cpu(cfg.device), "seed": seed, "data_seed": seed, "disable_tqdm": True,
        "dataloader_num_workers": 0, "gradient_checkpointing": False, "ddp_find_unused_parameters": False,
    }
    if cfg.max_steps > 0:
        args["max_steps"] = cfg.max_steps
    return args


def _check_rows(rows: list[dict[str, Any]], keys: tuple[str, ...], what: str) -> None:
    if not rows:
        raise DataError(f"{what}: no training rows")
    for i, r in enumerate(rows):
        missing = [k for k in keys if k not in r]
        if missing:
            raise DataError(f"{what}: row {i} lacks field(s) {missing} (expected {list(keys)})")
        for k in keys:
            v = r[k]
            if not isinstance(v, list) or not all(isinstance(m, dict) and "role" in m and "content" in m for m in v):
                raise DataError(f"{what}: row {i} field '{k}' must be a list of {{role, content}} messages")


def _lora_config(cfg: TrainingConfig, targets: list[str] | None) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                      target_modules=targets or DEFAULT_LORA_TARGETS, task_type="CAUSAL_LM", bias="none")


def _quiet() -> None:
    from banditarena.models.hub import quiet

    quiet()  # the ML stack's FutureWarnings and progress bars stay off the console
    try:
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
    except ImportError:  # pragma: no cover - datasets is a dependency of trl
        pass
    for name in ("transformers", "trl", "peft", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("WANDB_DISABLED", "true")


def _drop_printer(trainer: Any) -> None:
    """The loss history is kept in ``trainer.state``; do not print a dict per step."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)


def _finish(trainer: Any, lora: bool, out_dir: Path, save: bool, save_adapter: bool, tok: Any,
            t0: float, n_rows: int) -> TrainResult:
    losses = [float(h["loss"]) for h in trainer.state.log_history if "loss" in h]
    metrics = {k: float(v) for k, v in (trainer.state.log_history[-1] if trainer.state.log_history else {}).items()
               if isinstance(v, (int, float))}
    model = trainer.model
    adapter_path = None
    if lora:
        if save_adapter:
            adapter_path = out_dir / "adapter"
            if _is_main_process():
                model.save_pretrained(str(adapter_path))
        model = model.merge_and_unload()
    model.eval()
    path = None
    if save:
        path = out_dir / "checkpoint"
        if _is_main_process():  # one writer under a multi-process launch
            model.save_pretrained(str(path), safe_serialization=True)
            tok.save_pretrained(str(path))
    return TrainResult(path=path, losses=losses, model=model, tokenizer=tok, adapter_path=adapter_path,
                       metrics=metrics, n_rows=n_rows, wall_s=time.perf_counter() - t0)


def preference_row(prompt: Prompt | list[Message], chosen: str, rejected: str) -> dict[str, Any]:
    """TRL's conversational preference row: the prompt's messages (system and first user turn of a
    :class:`Prompt`, or the given messages), then one assistant answer each for chosen and rejected."""
    if isinstance(prompt, Prompt):
        msgs = [*[dict(m) for m in prompt.messages if m["role"] == "system"],
                {"role": "user", "content": prompt.user_turns[0]}]
    else:
        msgs = [dict(m) for m in prompt]
    return {"prompt": msgs, "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}]}


def sft_row(prompt: Prompt, answers: list[str]) -> dict[str, Any]:
    """TRL's conversational SFT row: the prompt's system message, then each user turn with its answer."""
    msgs: list[Message] = [dict(m) for m in prompt.messages if m["role"] == "system"]
    for user, answer in zip(prompt.user_turns, answers, strict=False):
        msgs += [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    return {"messages": msgs}


def _sft_rows(rows: list[dict[str, Any]], completion_only: bool) -> list[dict[str, Any]]:
    if not completion_only:
        return [{"messages": r["messages"]} for r in rows]
    out = []
    for i, r in enumerate(rows):
        msgs = r["messages"]
        last = max((j for j, m in enumerate(msgs) if m["role"] == "assistant"), default=-1)
        if last <= 0:
            raise DataError(f"train_sft: row {i} has no assistant answer after a prompt")
        out.append({"prompt": msgs[:last], "completion": [msgs[last]]})
    return out


def train_sft(
    model_path: Any,
    rows: list[dict[str, Any]],
    out_dir: str | os.PathLike[str],
    config: TrainingConfig | None = None,
    *,
    seed: int = 0,
    tokenizer: Any | None = None,
    save: bool = True,
    save_adapter: bool = False,
    lora_targets: list[str] | None = None,
    extra_args: dict[str, Any] | None = None,
) -> TrainResult:
    """Supervised fine-tuning with TRL's ``SFTTrainer`` on ``{"messages": [...]}`` rows.

    ``model_path`` is a local checkpoint path, an embedded-default alias, or an in-memory model (then pass
    ``tokenizer``). The settings come from ``config`` (:class:`~banditarena.config.TrainingConfig`: LoRA,
    epochs, ``learning_rate``, batch size, ``max_length``, ``max_steps``, ``completion_only``, device). With
    ``completion_only`` each row becomes TRL's conversational prompt-completion form (everything before the
    last assistant turn is the prompt) and the loss is on that final answer only. Returns a
    :class:`TrainResult` whose ``path`` is ``out_dir/checkpoint`` when ``save``.
    """
    cfg = config or TrainingConfig()
    _check_rows(rows, ("messages",), "train_sft")
    _quiet()
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model, tok = _resolve_model(model_path, tokenizer)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    args = SFTConfig(
        **_common_args(out, cfg, cfg.epochs, cfg.learning_rate, seed),
        assistant_only_loss=False, completion_only_loss=cfg.completion_only,
        **(extra_args or {}),
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(_sft_rows(rows, cfg.completion_only)),
                         processing_class=tok,
                         peft_config=_lora_config(cfg, lora_targets) if cfg.lora else None)
    _drop_printer(trainer)
    trainer.train()
    return _finish(trainer, cfg.lora, out, save, save_adapter, tok, t0, len(rows))


def train_dpo(
    model_path: Any,
    rows: list[dict[str, Any]],
    out_dir: str | os.PathLike[str],
    config: TrainingConfig | None = None,
    *,
    seed: int = 0,
    ref_model: Any | None = None,
    tokenizer: Any | None = None,
    save: bool = True,
    save_adapter: bool = False,
    lora_targets: list[str] | None = None,
    extra_args: dict[str, Any] | None = None,
) -> TrainResult:
    """DPO (+ NLL on the chosen answer when ``config.nll_alpha > 0``) with TRL's ``DPOTrainer``.

    ``rows`` are conversational preference rows ``{"prompt": [...], "chosen": [...], "rejected": [...]}``
    (see :func:`preference_row`). Settings from ``config``: LoRA, ``dpo_epochs`` (default ``epochs``),
    ``dpo_learning_rate``, ``beta``, ``nll_alpha``, batch size, ``max_length``, ``max_steps``, device.
    ``ref_model`` None means the model as given (with LoRA: the adapter-disabled model; without: a frozen
    copy made by TRL). Returns a :class:`TrainResult`; ``losses`` is the per-step total training loss.
    """
    cfg = config or TrainingConfig()
    _check_rows(rows, ("prompt", "chosen", "rejected"), "train_dpo")
    _quiet()
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    model, tok = _resolve_model(model_path, tokenizer)
    if isinstance(ref_model, (str, os.PathLike)):
        ref_model, _ = load_causal_lm(ref_model)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    nll = cfg.nll_alpha
    loss_type = ["sigmoid", "sft"] if nll > 0 else ["sigmoid"]
    loss_weights = [1.0, float(nll)] if nll > 0 else None
    epochs = cfg.dpo_epochs if cfg.dpo_epochs is not None else cfg.epochs
    args = DPOConfig(
        **_common_args(out, cfg, epochs, cfg.dpo_learning_rate, seed),
        beta=cfg.beta, loss_type=loss_type, loss_weights=loss_weights,
        **(extra_args or {}),
    )
    data = Dataset.from_list([{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in rows])
    trainer = DPOTrainer(model=model, ref_model=ref_model, args=args, train_dataset=data, processing_class=tok,
                         peft_config=_lora_config(cfg, lora_targets) if cfg.lora else None)
    _drop_printer(trainer)
    trainer.train()
    return _finish(trainer, cfg.lora, out, save, save_adapter, tok, t0, len(rows))


# ---------------------------------------------------------------------------------- accelerate launcher
def train(kind: str, model_path: str, rows: list[dict[str, Any]], out_dir: str | os.PathLike[str],
          config: TrainingConfig, *, seed: int = 0, log_path: str | os.PathLike[str] | None = None) -> TrainResult:
    """SFT (``kind="sft"``) or DPO (``"dpo"``) by ``config.launcher``: in this process, or as a separate
    ``accelerate launch --config_file config.accelerate_config -m banditarena.training`` process over the
    rows written to ``out_dir`` (same settings, same checkpoint format). The launched process's output goes
    to ``log_path`` (default ``out_dir/train.log``); a failed launch raises :class:`ModelError` naming it."""
    import json
    import subprocess
    import sys

    if kind not in ("sft", "dpo"):
        raise ValueError(f"train: kind must be sft or dpo, got {kind!r}")
    if config.launcher == "inprocess":
        fn = train_sft if kind == "sft" else train_dpo
        return fn(model_path, rows, out_dir, config, seed=seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _check_rows(rows, ("messages",) if kind == "sft" else ("prompt", "chosen", "rejected"), f"train_{kind}")
    with (out / "rows.jsonl").open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    (out / "training.json").write_text(config.model_dump_json(), encoding="utf-8")
    log = Path(log_path) if log_path is not None else out / "train.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    accelerate = Path(sys.executable).with_name("accelerate")
    cmd = [str(accelerate) if accelerate.exists() else "accelerate", "launch", "--config_file",
           str(config.accelerate_config), "-m", "banditarena.training", kind, str(model_path), str(out / "rows.jsonl"),
           str(out), str(out / "training.json"), str(seed)]
    t0 = time.perf_counter()
    with log.open("w", encoding="utf-8") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        try:
            rc = subprocess.run(cmd, check=False, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}).returncode
        except OSError as exc:
            raise ModelError(f"accelerate launch could not start ({exc.strerror}); log: {log}") from exc
    result = out / "result.json"
    if rc != 0 or not result.exists():
        raise ModelError(f"accelerate launch of {kind} training failed (exit {rc}); log: {log}; rerun to resume")
    info = json.loads(result.read_text(encoding="utf-8"))
    return TrainResult(path=Path(info["path"]) if info.get("path") else None, losses=info["losses"],
                       n_rows=len(rows), wall_s=time.perf_counter() - t0, metrics=info.get("metrics", {}))


def _main(argv: list[str]) -> None:
    """``python -m banditarena.training KIND MODEL ROWS.jsonl OUT_DIR TRAINING.json SEED`` (what
    :func:`train` launches through accelerate): one process of the launch."""
    import json

    kind, model_path, rows_path, out_dir, cfg_path, seed = argv
    cfg = TrainingConfig.model_validate_json(Path(cfg_path).read_text(encoding="utf-8"))
    from banditarena.text import iter_jsonl

    rows = [r for _, r in iter_jsonl(rows_path)]
    fn = train_sft if kind == "sft" else train_dpo
    res = fn(model_path, rows, out_dir, cfg.model_copy(update={"launcher": "inprocess"}), seed=int(seed))
    if _is_main_process():
        Path(out_dir, "result.json").write_text(json.dumps(
            {"path": str(res.path) if res.path else None, "losses": res.losses, "metrics": res.metrics,
             "world_size": world_size()}), encoding="utf-8")


if __name__ == "__main__":
    import sys

    _main(sys.argv[1:])
