"""Human votes in the loop: a live arena page, FastChat-compatible vote logs, the human leaderboard, judge-vs-human
agreement.

* :mod:`~banditarena.votes.records`: what a vote is (FastChat's four vote types, pseudonymous voter ids, the
  matchup a voter may vote on once) and how one is written to the run store (``RunStore.put_votes``: the vote
  and its battle, judge ``human``, in one committed transaction).
* :mod:`~banditarena.votes.service`: :class:`VoteService`, the recipe's prompts and answers, the pair sampler
  (Chatbot Arena's active sampling rule over the human votes so far), signed battle tickets and the vote check.
* :mod:`~banditarena.votes.web`: the FastAPI page (``banditarena vote serve``), built on :mod:`banditarena.web`.
* :mod:`~banditarena.votes.fastchat`: FastChat ``conv.json`` vote lines and ``clean_battle*.json`` in and out,
  with FastChat's cleaning rules.
* :mod:`~banditarena.votes.board` / :mod:`~banditarena.votes.agreement`: the human leaderboard beside each AI
  judge's on the same matchups, and each AI judge's agreement with the votes.
"""

from banditarena.votes.records import VOTE_TYPES, voter_pseudonym

__all__ = ["VOTE_TYPES", "voter_pseudonym"]
