"""Step 3 of an iteration: TRL SFT on the winners' answers, then DPO on the pairs, from the current checkpoint.

A finished checkpoint carries a ``DONE`` marker with the fingerprint of what it was trained from (start
model, training settings, seed, selected rows): it is reused on resume, and never reused (nor overwritten)
when the recipe now gives other rows or settings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from banditarena.errors import ConfigError
from banditarena.seeds import child_seed
from banditarena.types import stable_hash

if TYPE_CHECKING:
    from banditarena.flywheel.data import Selection
    from banditarena.flywheel.recipe import FlywheelRecipe


class TrainStep:
    """Trains iteration ``it``'s checkpoint under ``run_dir/checkpoints/it<i>``."""

    def __init__(self, recipe: FlywheelRecipe, run_dir: Path) -> None:
        self.recipe = recipe
        self.run_dir = run_dir

    def seed(self, it: int) -> int:
        return child_seed(self.recipe.seed, "train", it)

    def fingerprint(self, it: int, model: str, sel: Selection) -> str:
        """What a checkpoint is trained from: start model, training settings, seed and the selected rows."""
        return stable_hash({"model": model, "training": self.recipe.training.model_dump(mode="json"),
                            "seed": self.seed(it), "sft": sel.sft, "dpo": sel.dpo})

    def check(self, it: int, model: str, sel: Selection) -> None:
        """Refuse a finished checkpoint trained on other rows or settings than the recipe now gives."""
        done = self.run_dir / "checkpoints" / f"it{it}" / "DONE"
        if not done.exists():
            return
        saved = json.loads(done.read_text()).get("fingerprint")
        if saved is not None and saved != self.fingerprint(it, model, sel):
            raise ConfigError(
                f"{done.parent}: this checkpoint was trained on other data or training settings than the recipe now "
                f"gives (was the recipe changed?); use a new --run-dir, or move {done.parent} and later checkpoints "
                "away to retrain")

    def run(self, it: int, model: str, sel: Selection) -> tuple[str, str | None]:
        """The new checkpoint (or the unchanged model when no row passed selection) and a warning, if any."""
        out = self.run_dir / "checkpoints" / f"it{it}"
        done = out / "DONE"
        if done.exists():  # check() ran before the data was exported
            return json.loads(done.read_text())["checkpoint"], None
        from banditarena.models.hub import resolve_llm
        from banditarena.training import train

        tc = self.recipe.training
        start = current = resolve_llm(model)
        history = {}
        logs = self.run_dir / "logs"
        if tc.sft and sel.sft:
            r = train("sft", current, sel.sft, out / "sft", tc, seed=self.seed(it), log_path=logs / f"it{it}-sft.log")
            current, history["sft_loss"] = str(r.path), r.losses
        if tc.dpo and sel.dpo:
            r = train("dpo", current, sel.dpo, out / "dpo", tc, seed=self.seed(it), log_path=logs / f"it{it}-dpo.log")
            current, history["dpo_loss"] = str(r.path), r.losses
        warning = None
        if current == start:
            warning = f"iteration {it}: no training data passed selection; the target is unchanged"
        done.parent.mkdir(parents=True, exist_ok=True)
        done.write_text(json.dumps({"checkpoint": current, "fingerprint": self.fingerprint(it, model, sel), **history}))
        return current, warning
