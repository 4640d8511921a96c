"""Every benchmark and experiment script still imports against today's code (they run for minutes or hours, so only
their imports are checked here), loaded by path as `python benchmarks/NAME.py` runs them: no test imports them."""

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HELPERS = {"common.py", "recipes.py"}  # imported by the scripts, not run
SCRIPTS = sorted(p.relative_to(REPO) for folder in ("benchmarks", "experiments") for p in (REPO / folder).glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=str)
def test_script_imports(script, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / script.parent))
    for name in ("common", "recipes"):  # each folder has its own common.py: never the other folder's
        monkeypatch.delitem(sys.modules, name, raising=False)
    spec = importlib.util.spec_from_file_location(f"script_{script.parent}_{script.stem}", REPO / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert script.name in HELPERS or callable(getattr(module, "main", None)), f"{script} has no main()"
    sys.modules.pop(spec.name, None)
