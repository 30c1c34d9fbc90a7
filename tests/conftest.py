"""Shared pytest configuration. Hypothesis runs the "ci" profile unless HYPOTHESIS_PROFILE names another."""
import os

from hypothesis import settings

settings.register_profile("ci", max_examples=60, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
