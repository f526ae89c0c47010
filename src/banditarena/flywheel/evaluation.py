"""Step 4 of an iteration: the new checkpoint battles the fixed opponents (and the earlier checkpoints) on
the held-out test set with the same judge; one Bradley-Terry fit over all evaluation battles gives the
target's Elo per iteration, with bootstrap CIs and the gain over iteration 0 with a paired CI.

Measures the training data was not mined with (``eval.verifiable``, ``eval.judges``): exact final-answer
accuracy on held-out problems with checkable answers (:func:`banditarena.text.is_correct` against each
prompt's reference), with a bootstrap CI over problems and a paired CI of the change from iteration 0; and
further judges that re-judge the same evaluation answers (stored: judge calls only), each fitted alone, with
its own gain and paired CI. The target's mean answer length on the test set rides along (a gain that is
only length shows as one)."""

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
                 progress: ProgressFn | None, *, verifiable: list[Prompt] | None = None,
                 judges: dict[str, Judge] | None = None) -> None:
        self.recipe = recipe
        self.verifiable = verifiable or []
        self.judges = judges or {}
        self.lengths: dict[int, float] = {}  # iteration -> mean answer tokens on the test set
        self.correct: dict[int, np.ndarray] = {}  # iteration -> 0/1 per verifiable problem
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
        matches = [Match(p, target.name, o.name) for p in self.test for o in others]
        result = await arena.arun(matches)
        for name, judge in self.judges.items():  # the same answers, re-judged
            await Arena(self.store, [target, *others], judge, seed=self.recipe.seed, progress=self.progress,
                        tag=f"eval:{name}").arun(matches)
        await self._own_answers(it, arena, target)
        return result

    async def _own_answers(self, it: int, arena: Arena, target: Contestant) -> None:
        """Checkpoint ``it``'s answers to the test set (stored) and to the verifiable problems: mean answer
        length, and 0/1 correctness per problem."""
        from banditarena.text import is_correct

        self.store.add_prompts(self.verifiable)
        gens = await arena.generate([(target.name, p) for p in [*self.test, *self.verifiable]], ArenaResult())
        toks = [gens[(target.name, p.id)].tokens for p in self.test if (target.name, p.id) in gens]
        self.lengths[it] = float(np.mean(toks)) if toks else float("nan")
        if self.verifiable:
            missing = [p.id for p in self.verifiable if (target.name, p.id) not in gens]
            if missing:
                raise DataError(f"eval.verifiable: no answer of {target.name} to {len(missing)} problem(s) "
                                f"(first: {missing[0]}); rerun to resume")
            self.correct[it] = np.array([is_correct(gens[(target.name, p.id)].turns[-1], p.reference)
                                         for p in self.verifiable], dtype=float)

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
        others = {n: fit for n in self.judges if (fit := self._fit(f"eval:{n}")) is not None}
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
            row = {"iteration": it, "model": self.recipe.target.name, "contestant": contestant,
                   "evaluated_as": name, "rating": r["rating"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                   "gain": gain, "gain_low": lo, "gain_high": hi, **style_gain(style, name, first),
                   "answer_tokens": self.lengths.get(it, float("nan")), **self.accuracy(it)}
            for jname, fit in others.items():
                row.update({f"{jname}_{k}": v for k, v in paired_gain(fit, name, first).items()})
            rows.append(row)
        return pd.DataFrame(rows), lb

    def _fit(self, tag: str) -> Any:
        """A Bradley-Terry fit (graded where the judge gives P(A beats B), bootstrap over prompts) of the
        battles tagged ``tag``; None when there are none."""
        from banditarena.arena.service import rating_frame
        from banditarena.ratings import BradleyTerry

        battles = self.store.battles(tag, valid_only=True,
                                     columns=("prompt_id", "model_a", "model_b", "winner", "outcome"))
        if battles.empty:
            return None
        frame = rating_frame(battles, "auto", str(self.store.path))
        graded = "outcome" in frame.columns
        bt = BradleyTerry(bootstrap=self.recipe.eval.bootstrap, seed=self.recipe.seed, anchor=self.recipe.eval.anchor,
                          cluster="prompt_id" if graded else None)
        bt.fit(frame[["prompt_id", "model_a", "model_b", "outcome"]] if graded else frame[["model_a", "model_b", "winner"]])
        return bt

    def accuracy(self, it: int) -> dict[str, float]:
        """Exact accuracy of iteration ``it`` on the verifiable problems with a bootstrap 95% CI over problems,
        and its change from iteration 0 with a paired bootstrap CI (the same resampled problems)."""
        nan = float("nan")
        out = {"accuracy": nan, "accuracy_low": nan, "accuracy_high": nan,
               "accuracy_gain": nan, "accuracy_gain_low": nan, "accuracy_gain_high": nan}
        c = self.correct.get(it)
        if c is None or not len(c):
            return out
        from banditarena.seeds import child_seed

        rounds = max(1, self.recipe.eval.bootstrap)
        idx = np.random.default_rng(child_seed(self.recipe.seed, "verifiable")).integers(0, len(c), (rounds, len(c)))
        out["accuracy"] = float(c.mean())
        out["accuracy_low"], out["accuracy_high"] = (float(x) for x in np.percentile(c[idx].mean(1), [2.5, 97.5]))
        c0 = self.correct.get(0)
        if c0 is not None and len(c0) == len(c):
            d = c - c0
            out["accuracy_gain"] = float(d.mean())
            out["accuracy_gain_low"], out["accuracy_gain_high"] = (
                float(x) for x in np.percentile(d[idx].mean(1), [2.5, 97.5]))
        return out

    def style_fit(self) -> Any:
        """Style-controlled Bradley-Terry over the same evaluation battles (answer length and markdown as
        covariates), or None when style cannot be fitted."""
        from banditarena.arena.style import battles_with_style, style_controlled

        return style_controlled(battles_with_style(self.store, "eval"), bootstrap=self.recipe.eval.bootstrap,
                                seed=self.recipe.seed, anchor=self.recipe.eval.anchor)


def paired_gain(bt: Any, name: str, first: str) -> dict[str, float]:
    """``name``'s rating minus ``first``'s in the fit ``bt``, with a paired bootstrap 95% CI (NaN if absent)."""
    nan = float("nan")
    out = {"gain": nan, "gain_low": nan, "gain_high": nan}
    if name not in bt.ratings_.index or first not in bt.ratings_.index:
        return out
    out["gain"] = float(bt.ratings_[name] - bt.ratings_[first])
    if bt.bootstrap_ is not None:
        d = (bt.bootstrap_[name] - bt.bootstrap_[first]).to_numpy()
        out["gain_low"], out["gain_high"] = (float(x) for x in np.percentile(d, [2.5, 97.5]))
    return out


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
