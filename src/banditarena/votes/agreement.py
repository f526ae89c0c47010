"""How far each AI judge agrees with people, on the same battles: ``banditarena audit RUN --against human``.

A human vote and an AI judge's battle are the same battle when they share the prompt and the (unordered)
model pair. Per AI judge:

* ``agreement`` (without ties): among the votes where the person and the judge both picked a winner, the
  share where they picked the same one (MT-Bench's "agreement w/o tie");
* ``agreement_with_ties``: the share of all matched votes whose three-way label (A, B, tie; "both bad" is a
  tie) is the same;
* ``judge_tie_rate``, ``human_tie_rate``;
* 95% CIs by a cluster bootstrap over prompts (votes on one prompt share answers, so they are not
  independent);
* ``by_category``: agreement per prompt topic cluster (or category), lowest first: where they disagree most;
* ``by_length``: agreement by how different the two answers' lengths are (terciles of the absolute
  difference in characters), and how often each side chose the *longer* answer when they disagreed;
* ``human_vs_human``: the same agreement between two people on one matchup, where there are such pairs
  (the ceiling a judge can be asked to reach).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from banditarena.errors import DataError
from banditarena.store import RunStore
from banditarena.store.sqlite import HUMAN_JUDGE
from banditarena.votes.board import BATTLE_COLS, matchup_keys

LABEL = {"model_a": 0, "model_b": 1, "tie": 2, "tie (bothbad)": 2}


def _cluster_ci(ok: np.ndarray, groups: np.ndarray, rounds: int, seed: int) -> tuple[float, float]:
    """95% CI of mean(ok) by resampling whole groups (prompts)."""
    if ok.size == 0:
        return (float("nan"), float("nan"))
    codes, inv = np.unique(groups, return_inverse=True)
    sums = np.bincount(inv, ok.astype(float), len(codes))
    counts = np.bincount(inv, minlength=len(codes)).astype(float)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(codes), size=(rounds, len(codes)))
    w = np.stack([np.bincount(row, minlength=len(codes)) for row in pick])
    means = (w @ sums) / np.maximum(w @ counts, 1.0)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(lo), float(hi)


def _rate(ok: np.ndarray, groups: np.ndarray, rounds: int, seed: int) -> dict[str, Any]:
    lo, hi = _cluster_ci(ok, groups, rounds, seed)
    return {"value": float(ok.mean()) if ok.size else float("nan"), "ci": [lo, hi], "n": int(ok.size)}


def _oriented(human_a: np.ndarray, ai_a: np.ndarray, ai_label: np.ndarray) -> np.ndarray:
    """The AI's label in the human vote's orientation (A = the human vote's model_a)."""
    flip = human_a != ai_a
    out = ai_label.copy()
    out[flip & (ai_label == 0)] = 1
    out[flip & (ai_label == 1)] = 0
    return out


def agreement_against_human(store: RunStore, *, rounds: int = 1000, seed: int = 0, min_group: int = 5
                            ) -> dict[str, dict[str, Any]]:
    """Agreement of every AI judge of the run with the human votes on the same battles (see the module)."""
    import pandas as pd

    battles = store.battles(valid_only=True, columns=BATTLE_COLS)
    human = battles[battles["judge"] == HUMAN_JUDGE].reset_index(drop=True)
    if human.empty:
        raise DataError(f"{store.path}: no human votes to audit against (see 'banditarena vote import' / 'vote serve')")
    ai_all = battles[battles["judge"] != HUMAN_JUDGE]
    if ai_all.empty:
        raise DataError(f"{store.path}: no AI judge's battles to compare with the {len(human)} human votes "
                        "(run 'banditarena battle RECIPE --run-dir' on this run directory first)")
    human = human.assign(key=matchup_keys(human), h=human["winner"].map(LABEL).astype(int))
    prompts = {p.id: p for p in store.prompts()}
    keys = pd.concat([human["gen_a"], human["gen_b"]]).dropna().unique().tolist()
    length = {k: len("\n\n".join(g.turns)) for k, g in store.get_generations(keys).items()}
    human["len_a"] = human["gen_a"].map(length)
    human["len_b"] = human["gen_b"].map(length)
    human["category"] = human["prompt_id"].map(
        lambda pid: (prompts[pid].cluster or prompts[pid].category or "-") if pid in prompts else "-")
    out: dict[str, dict[str, Any]] = {}
    for judge, group in ai_all.groupby("judge", sort=True):
        g = group.assign(key=matchup_keys(group)).drop_duplicates("key", keep="last")
        m = human.merge(g[["key", "model_a", "winner"]].rename(columns={"model_a": "ai_a", "winner": "ai_w"}),
                        on="key", how="inner")
        if m.empty:
            continue
        ai = _oriented(m["model_a"].to_numpy(), m["ai_a"].to_numpy(), m["ai_w"].map(LABEL).to_numpy().astype(int))
        h = m["h"].to_numpy()
        groups = m["prompt_id"].to_numpy()
        decided = (h != 2) & (ai != 2)
        res: dict[str, Any] = {
            "matched_votes": len(m), "human_votes": len(human),
            "agreement": _rate((h == ai)[decided], groups[decided], rounds, seed),
            "agreement_with_ties": _rate(h == ai, groups, rounds, seed),
            "judge_tie_rate": float((ai == 2).mean()), "human_tie_rate": float((h == 2).mean()),
        }
        cats = []
        for cat, idx in m.groupby("category").groups.items():
            sel = np.asarray([m.index.get_loc(i) for i in idx])
            d = sel[decided[sel]]
            if len(d) >= min_group:
                cats.append({"category": str(cat), "n": len(d), "agreement": float((h[d] == ai[d]).mean())})
        res["by_category"] = sorted(cats, key=lambda c: (c["agreement"], -c["n"]))[:10]
        la, lb = m["len_a"].to_numpy(dtype=float), m["len_b"].to_numpy(dtype=float)
        have = ~np.isnan(la) & ~np.isnan(lb)
        bins = []
        if have.sum() >= 3 * min_group:
            diff = np.abs(la - lb)
            cuts = np.quantile(diff[have], [1 / 3, 2 / 3])
            for name, sel in (("similar lengths", have & (diff <= cuts[0])),
                              ("middle", have & (diff > cuts[0]) & (diff <= cuts[1])),
                              ("very different lengths", have & (diff > cuts[1]))):
                d = sel & decided
                bins.append({"bin": name, "max_abs_diff_chars": float(diff[sel].max()) if sel.any() else 0.0,
                             "n": int(d.sum()), "agreement": float((h[d] == ai[d]).mean()) if d.any() else float("nan")})
            dis = decided & have & (h != ai) & (la != lb)
            longer = np.where(la > lb, 0, 1)
            res["disagreements_longer_chosen"] = {
                "n": int(dis.sum()),
                "judge": float((ai[dis] == longer[dis]).mean()) if dis.any() else float("nan"),
                "human": float((h[dis] == longer[dis]).mean()) if dis.any() else float("nan")}
        res["by_length"] = bins
        out[str(judge)] = res
    if not out:
        raise DataError(f"{store.path}: no AI judge's battle shares a prompt and model pair with the human votes")
    hh = _human_vs_human(human)
    for r in out.values():
        r["human_vs_human"] = hh
    return out


def _human_vs_human(human: Any) -> dict[str, Any] | None:
    """Agreement (without ties) between two people's votes on one matchup, over every such pair."""
    agree = total = 0
    for _, g in human.groupby("key"):
        if len(g) < 2:
            continue
        labels = _oriented(g["model_a"].to_numpy(), np.full(len(g), g["model_a"].iloc[0], dtype=object),
                           g["h"].to_numpy())
        labels = labels[labels != 2]
        for i in range(len(labels)):
            for j in range(i + 1, len(labels)):
                total += 1
                agree += int(labels[i] == labels[j])
    return {"pairs": total, "agreement": agree / total} if total else None
