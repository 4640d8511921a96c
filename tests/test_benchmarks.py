"""Every benchmark script still imports against today's code (they run for minutes, so only their imports are checked here)."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
HELPERS = {"common.py", "measure.py"}  # imported by the scripts, not run


@pytest.mark.parametrize("script", sorted(p.name for p in BENCHMARKS.glob("*.py")))
def test_benchmark_script_imports(script, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"benchmark_{Path(script).stem}", BENCHMARKS / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert script in HELPERS or callable(getattr(module, "main", None)), f"{script} has no main()"
    sys.modules.pop(spec.name, None)
