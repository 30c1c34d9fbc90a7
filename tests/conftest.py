"""Shared pytest configuration. Hypothesis runs the "ci" profile unless HYPOTHESIS_PROFILE names another."""
import os

import pytest
from hypothesis import settings

settings.register_profile("ci", max_examples=60, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def fresh_safety_memos():
    """The safety rules' memos on and empty for the test, on again afterwards (a test may turn them off to get
    the plain computation it compares with)."""
    from stimscript.compiler import safety

    safety.set_cache_enabled(True)
    safety.clear_caches()
    yield
    safety.set_cache_enabled(True)
