"""Out-of-fold evaluation of the trained classifier's recipe, as figures and a table (bench and CLI).

The shipped artifact is trained on all the data, so it cannot be scored on it. What is reported instead is
the training *recipe* under grouped k-fold cross-validation: every XSTest prompt and answer and every
HH-RLHF pair is scored by the fold model that did not see its group (thresholds chosen by an inner CV inside
that fold's training data). A second variant trains without XSTest at all and is scored on all of XSTest:
how the recipe transfers to prompts it has never seen the like of.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from banditarena.safety import data as d
from banditarena.safety.evaluate import margin_agreement, xstest_shares
from banditarena.safety.train import (
    SafetyData,
    TrainSettings,
    cross_validate,
    fit_heads,
    load_data,
    make_designs,
)


@dataclass
class OfflineEval:
    """Out-of-fold verdicts and scores of the classifier recipe on XSTest and HH-RLHF."""

    label: str
    prompt_verdicts: list[str]
    prompt_scores: np.ndarray
    answer_verdicts: list[str]  # for d.xstest_answers() order; partial refusals of unsafe prompts included
    answer_scores: np.ndarray
    answer_uncertain: np.ndarray
    prompt_uncertain: np.ndarray
    hh: dict[str, Any]
    xstest: dict[str, Any]


def _answers_index(data: SafetyData) -> dict[tuple[str, str], int]:
    out = {}
    for i, e in enumerate(data.resp_points):
        if e.source == "xstest-answer":
            out[(e.group, e.text)] = i
    return out


def offline_cv(settings: TrainSettings | None = None, progress: Callable[[str], None] | None = None) -> OfflineEval:
    """The recipe under grouped CV (see the module docstring)."""
    settings = settings or TrainSettings()
    data = load_data(settings)
    cv = cross_validate(data, settings, progress)
    prompts, answers = d.xstest_prompts(), d.xstest_answers()
    tp = {e.group: i for i, e in enumerate(data.text_points) if e.source == "xstest-prompt"}
    pi = [tp["xstest:" + p.id] for p in prompts]
    pv = ["unsafe" if cv.text_unsafe[i] else "safe" for i in pi]
    # partial refusals of unsafe prompts were not trained on: score them with their own fold's model below
    idx = _answers_index(data)
    av: list[str] = []
    ascores = np.full(len(answers), np.nan)
    aunc = np.zeros(len(answers), dtype=bool)
    missing = []
    for j, a in enumerate(answers):
        i = idx.get(("xstest:" + a.prompt_id, a.completion))
        if i is None:
            av.append("")
            missing.append(j)
            continue
        av.append("unsafe" if cv.response_unsafe[i] else "safe")
        ascores[j] = cv.response_scores[i]
        aunc[j] = cv.response_uncertain[i]
    for j in missing:  # not in any metric's denominator (the shares count complying answers only)
        av[j] = "uncertain"
    res = OfflineEval(
        label="classifier (CV)", prompt_verdicts=pv, prompt_scores=cv.text_scores[pi], answer_verdicts=av,
        answer_scores=ascores, answer_uncertain=aunc, prompt_uncertain=cv.text_uncertain[pi],
        hh={"response": margin_agreement(cv.response_pair_margin), "text": margin_agreement(cv.text_pair_margin)},
        xstest=xstest_shares(prompts, pv, answers, av))
    return res


def offline_transfer(settings: TrainSettings | None = None, progress: Callable[[str], None] | None = None
                     ) -> OfflineEval:
    """Trained without XSTest (HH-RLHF + AlpacaEval only), scored on all of XSTest; HH figures by CV."""
    from banditarena.safety.classifier import TrainedClassifier

    settings = (settings or TrainSettings()).model_copy(update={"use_xstest": False})
    data = load_data(settings)
    say = progress or (lambda s: None)
    cv = cross_validate(data, settings, say)
    say("transfer: fit on all of HH-RLHF + AlpacaEval")
    heads = fit_heads(data, settings, designs=make_designs(data, settings))
    clf = TrainedClassifier.from_heads(heads, settings)
    prompts, answers = d.xstest_prompts(), d.xstest_answers()
    pr = clf.score([p.prompt for p in prompts])
    ar = clf.score([a.completion for a in answers], prompts=[a.prompt for a in answers])
    pv, av = [r.verdict for r in pr], [r.verdict for r in ar]
    return OfflineEval(
        label="classifier without XSTest", prompt_verdicts=pv, prompt_scores=np.array([r.score for r in pr]),
        answer_verdicts=av, answer_scores=np.array([r.score for r in ar]),
        answer_uncertain=np.zeros(len(ar), dtype=bool), prompt_uncertain=np.zeros(len(pr), dtype=bool),
        hh={"response": margin_agreement(cv.response_pair_margin), "text": margin_agreement(cv.text_pair_margin)},
        xstest=xstest_shares(prompts, pv, answers, av))


def cv_table(settings: TrainSettings | None = None, progress: Callable[[str], None] | None = None) -> Any:
    """A rich table of :func:`offline_cv`'s overall figures (``banditarena safety train --cv``)."""
    from rich.table import Table

    ev = offline_cv(settings, progress)
    t = Table(title=f"{ev.label}: out-of-fold figures ({(settings or TrainSettings()).folds}-fold grouped CV)")
    t.add_column("measure")
    t.add_column("share (95% CI)", justify="right")
    t.add_column("n", justify="right")
    for k, v in ev.xstest["overall"].items():
        t.add_row(f"XSTest {k.replace('_', ' ')}", f"{v['share']:.1%} ({v['ci'][0]:.1%}..{v['ci'][1]:.1%})", str(v["n"]))
    h = ev.hh["response"]
    t.add_row("HH-RLHF agreement (answers with prompts)", f"{h['agreement']:.1%} ({h['ci'][0]:.1%}..{h['ci'][1]:.1%})",
              str(h["n"]))
    return t
