"""Step 4 of an iteration: the new checkpoint battles the fixed opponents (and the earlier checkpoints) on
the held-out test set with the same judge; one Bradley-Terry fit over all evaluation battles gives the
target's Elo per iteration, with bootstrap CIs and the gain over iteration 0 with a paired CI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from banditarena.arena.runner import Arena, ArenaResult, Match
from banditarena.errors import DataError
from banditarena.flywheel.roster import Roster, same_model
from banditarena.types import Contestant, Prompt

if TYPE_CHECKING:
    import pandas as pd

    from banditarena.flywheel.recipe import FlywheelRecipe
    from banditarena.judges.base import Judge
    from banditarena.progress import ProgressFn
    from banditarena.store import RunStore


class Evaluator:
    """Evaluates checkpoints on the test set and rates them (see the module docstring)."""

    def __init__(self, recipe: FlywheelRecipe, store: RunStore, judge: Judge, roster: Roster, test: list[Prompt],
                 progress: ProgressFn | None) -> None:
        self.recipe = recipe
        self.store = store
        self.judge = judge
        self.roster = roster
        self.test = test
        self.progress = progress
        self.snapshots: dict[int, Contestant] = {}  # evaluated checkpoints, by iteration
        self.aliases: dict[str, str] = {}  # checkpoint name -> the identical contestant it is evaluated as

    async def evaluate(self, it: int, model: str) -> ArenaResult:
        """Checkpoint ``it`` against the fixed opponents (and, with ``eval.snapshots``, every earlier
        checkpoint, whose answers are already stored) on the held-out test set, with the same judge.

        A checkpoint identical to an opponent (iteration 0 and a frozen copy of the base model: same backend,
        model and strategy, hence the same answers) *is* that opponent: its battles are recorded under the
        opponent's name and its Elo row is the opponent's, so the same evidence is never counted twice.
        """
        target = self.roster.target(it, model)
        opps = [o for o in self.roster.opponents if o.name in self.roster.eval_opponents]
        earlier = [self.snapshots[j] for j in sorted(self.snapshots) if j < it] if self.recipe.eval.snapshots else []
        earlier = [c for c in earlier if not any(same_model(c, o) for o in opps)]
        candidates = [*opps, *earlier]
        same = next((o for o in candidates if same_model(target, o)), None)
        if same is not None:  # e.g. an untrained checkpoint: it is the earlier contestant, not a new one
            self.aliases[target.name] = same.name
            target = same
        self.snapshots[it] = target
        others = [o for o in candidates if o.name != target.name]
        arena = Arena(self.store, [target, *others], self.judge, seed=self.recipe.seed, progress=self.progress,
                      tag="eval")
        return await arena.arun([Match(p, target.name, o.name) for p in self.test for o in others])

    def elo_table(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Target Elo per iteration (one BT fit over all evaluation battles, anchored per ``eval.anchor``),
        with bootstrap CIs and the gain over iteration 0 with its paired bootstrap CI; and the leaderboard."""
        import pandas as pd

        from banditarena.arena.service import rating_frame
        from banditarena.ratings import BradleyTerry

        battles = self.store.battles("eval", valid_only=True,
                                     columns=("prompt_id", "model_a", "model_b", "winner", "outcome"))
        if battles.empty:
            raise DataError(f"{self.store.path}: no valid evaluation battles")
        # the same outcome model as `banditarena leaderboard`: graded where the judge gives P(A beats B)
        frame = rating_frame(battles, "auto", str(self.store.path))
        graded = "outcome" in frame.columns
        bt = BradleyTerry(bootstrap=self.recipe.eval.bootstrap, seed=self.recipe.seed, anchor=self.recipe.eval.anchor,
                          cluster="prompt_id" if graded else None)
        bt.fit(frame[["prompt_id", "model_a", "model_b", "outcome"]] if graded else frame[["model_a", "model_b", "winner"]])
        lb = bt.leaderboard()
        lb.attrs["graded_battles"] = frame.attrs["graded_battles"]
        style = self.style_fit()
        rows = []
        first = self.aliases.get(self.roster.target_name(0), self.roster.target_name(0))
        for it in range(self.recipe.iterations + 1):
            contestant = self.roster.target_name(it)
            name = self.aliases.get(contestant, contestant)
            if name not in lb.index:
                continue
            r = lb.loc[name]
            # one series (the target) across iterations; the checkpoint's contestant name rides along.
            # gain: rating minus iteration 0's, with a 95% CI from the same bootstrap rounds (paired)
            gain = lo = hi = float("nan")
            if first in lb.index:
                gain = float(bt.ratings_[name] - bt.ratings_[first])
                if bt.bootstrap_ is not None:
                    d = (bt.bootstrap_[name] - bt.bootstrap_[first]).to_numpy()
                    lo, hi = (float(x) for x in np.percentile(d, [2.5, 97.5]))
            rows.append({"iteration": it, "model": self.recipe.target.name, "contestant": contestant,
                         "evaluated_as": name, "rating": r["rating"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                         "gain": gain, "gain_low": lo, "gain_high": hi, **style_gain(style, name, first)})
        return pd.DataFrame(rows), lb

    def style_fit(self) -> Any:
        """Style-controlled Bradley-Terry over the same evaluation battles (answer length and markdown as
        covariates), or None when style cannot be fitted."""
        from banditarena.arena.style import battles_with_style, style_controlled

        return style_controlled(battles_with_style(self.store, "eval"), bootstrap=self.recipe.eval.bootstrap,
                                seed=self.recipe.seed, anchor=self.recipe.eval.anchor)


def style_gain(res: Any, name: str, first: str) -> dict[str, float]:
    """Style-controlled rating of ``name`` and its gain over ``first`` with a paired bootstrap 95% CI (NaN when
    the style fit is missing or lacks either model)."""
    nan = float("nan")
    out = {"style_rating": nan, "style_gain": nan, "style_gain_low": nan, "style_gain_high": nan}
    if res is None or name not in res.leaderboard.index:
        return out
    out["style_rating"] = float(res.leaderboard.loc[name, "rating"])
    if first in res.leaderboard.index:
        out["style_gain"] = out["style_rating"] - float(res.leaderboard.loc[first, "rating"])
        if res.bootstrap is not None:
            d = (res.bootstrap[name] - res.bootstrap[first]).to_numpy()
            out["style_gain_low"], out["style_gain_high"] = (float(x) for x in np.percentile(d, [2.5, 97.5]))
    return out
