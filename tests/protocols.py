"""Protocol texts the equivalence tests share: the example and valid corpus files, and the benchmark's generated
protocol (benchmarks/bench_check.py ``make_protocol``), so every fast path is compared on the same inputs."""
from __future__ import annotations

import glob
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def protocol_files() -> list[str]:
    """Every example, then every valid corpus file, in a stable order."""
    files = sorted(glob.glob(os.path.join(ROOT, "examples", "*.stim")))
    files += sorted(glob.glob(os.path.join(ROOT, "tests", "corpus", "valid", "*.stim")))
    return files


def bench_protocol(lines: int = 500, weeks: int = 12) -> str:
    """The benchmark's generated protocol of about ``lines`` lines over ``weeks`` weeks."""
    spec = importlib.util.spec_from_file_location("bench_check", os.path.join(ROOT, "benchmarks", "bench_check.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.make_protocol(lines, weeks)
