"""Tests of the bandit core (banditarena.bandits)."""
