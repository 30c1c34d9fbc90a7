"""Measure another checkout side by side: import ``stimscript`` from a folder instead of what is installed.

The benchmarks' ``--before DIR`` runs the same script against an older checkout; an editable install maps
``stimscript`` and its sub-packages to its own checkout, so a finder placed first on ``sys.meta_path`` maps
them (as setup.py does) to the folders of ``root``.
"""
from __future__ import annotations

import importlib.util
import os
import sys

#: the top-level folders setup.py installs as ``stimscript.<name>``
SUBPACKAGES = ("dsl", "compiler", "programs", "runtime", "drivers", "ext")


def use_checkout(root: str) -> None:
    """Import ``stimscript`` and its sub-packages from the checkout ``root``, ahead of whatever is installed."""
    root = os.path.abspath(root)
    mapping = {"stimscript": os.path.join(root, "stimscript")}
    mapping.update({f"stimscript.{n}": os.path.join(root, n) for n in SUBPACKAGES})

    class _Finder:
        @classmethod
        def find_spec(cls, fullname, path=None, target=None):
            folder = mapping.get(fullname)
            if folder is None or not os.path.isdir(folder):
                return None
            return importlib.util.spec_from_file_location(fullname, os.path.join(folder, "__init__.py"),
                                                          submodule_search_locations=[folder])

    sys.meta_path.insert(0, _Finder)
