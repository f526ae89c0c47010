"""banditarena.audits: how far a judge can be trusted, measured on its own judgments.

* :func:`bias_audit` / :func:`bias_audit_table` (:mod:`banditarena.audits.bias`) - position bias, length bias,
  self-preference and invalid output per judge, from judgments (and the answers' lengths);
* :func:`fairness_audit` / :func:`self_preference` / :func:`fairness_table` (:mod:`banditarena.audits.fairness`)
  - counterfactual demographic swaps of any judge's inputs, and self-preference with CIs;
* :func:`run_fairness_audit` / :func:`fairness_section` (:mod:`banditarena.audits.run_fairness`) - the fairness
  audit of a run directory (``banditarena audit RUN --fairness``), stored in the run store.

Importing this package loads no model library.
"""

from __future__ import annotations

from banditarena.audits.bias import bias_audit, bias_audit_table, judgments_frame
from banditarena.audits.fairness import (
    ATTRIBUTES,
    StateCache,
    fairness_audit,
    fairness_table,
    self_preference,
)
from banditarena.audits.run_fairness import fairness_section, judge_of_run, run_fairness_audit

__all__ = [
    "ATTRIBUTES",
    "StateCache",
    "bias_audit",
    "bias_audit_table",
    "fairness_audit",
    "fairness_section",
    "fairness_table",
    "judge_of_run",
    "judgments_frame",
    "run_fairness_audit",
    "self_preference",
]
