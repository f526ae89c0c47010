"""The reward-model tests use the LASeR tests' tiny models (a random llama and a one-label classifier)."""

from tests.laser.conftest import _one_thread, tiny_classifier, tiny_llama  # noqa: F401 - fixtures
