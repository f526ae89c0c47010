"""Fixtures for the bandit core tests."""

from __future__ import annotations

import pytest

from tests.bandits.bandit_cases import ALL


@pytest.fixture(params=sorted(ALL))
def any_policy_factory(request):
    return ALL[request.param]
