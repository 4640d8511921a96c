"""The layout follows the pipeline: a stage never imports a later one, and the shared core imports no stage."""

import ast
from pathlib import Path

import cachetune

PACKAGE = Path(cachetune.__file__).parent
# Order of the stages; a module may import its own layer and the layers before it.
LAYERS = ["core", "data", "synth", "train", "export", "evaluate", "cache", "integrations", "pipeline", "cli"]
CORE = {
    "errors",
    "inputs",
    "packaged",
    "cache_config",
    "records",
    "settings",
    "text",
    "metrics",
    "replay",
    "models",
    "onnx_encoder",
    "facts",
    "decision",
    "conversation",
}
FACADES = {"__init__", "__main__"}  # the public API and `python -m cachetune` may name anything


def layer_of(module: str) -> str:
    """'cachetune.train.trainer' -> 'train'; 'cachetune.models' -> 'core'."""
    top = module.split(".")[1]
    return "core" if top in CORE else top


def imports(path: Path) -> set[str]:
    """Every cachetune module `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("cachetune.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cachetune.") and node.level == 0:
            found.add(node.module)
    return found


def modules() -> dict[str, Path]:
    return {
        "cachetune." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts): path
        for path in PACKAGE.rglob("*.py")
        if path.stem not in FACADES or path.parent != PACKAGE
    }


def test_every_module_belongs_to_a_layer():
    for module in modules():
        assert layer_of(module) in LAYERS, f"{module} is in no layer; add it to CORE or LAYERS"


def test_no_module_imports_a_later_stage():
    wrong = []
    for module, path in modules().items():
        mine = LAYERS.index(layer_of(module))
        for imported in imports(path):
            if LAYERS.index(layer_of(imported)) > mine:
                wrong.append(f"{module} imports {imported}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_between_modules():
    graph = {module: {i for i in imports(path) if i in modules()} for module, path in modules().items()}
    visiting, done = set(), set()

    def visit(module: str, trail: list[str]) -> None:
        if module in done:
            return
        assert module not in visiting, "import cycle: " + " -> ".join([*trail, module])
        visiting.add(module)
        for imported in graph.get(module, ()):
            visit(imported, [*trail, module])
        visiting.discard(module)
        done.add(module)

    for module in graph:
        visit(module, [])


def test_every_function_fits_on_a_screen():
    """No function in src/ is longer than 60 lines: a longer one is split into named steps."""
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 60:
                long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, "\n".join(long)


REPO = PACKAGE.parents[1]
TREES = ("tests", "benchmarks", "experiments")


def local_imports(path: Path) -> set[str]:
    """Top-level names `path` imports (any level), and the folders it puts on the import path
    (`sys.path.insert(0, ... "benchmarks")`, `monkeypatch.syspath_prepend(...)`) as `path:FOLDER`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("insert", "append", "syspath_prepend")
        ):
            named = {part.value for arg in node.args for part in ast.walk(arg) if isinstance(part, ast.Constant)}
            found |= {f"path:{tree}" for tree in TREES if tree in named}
    return found


def test_tests_benchmarks_and_experiments_never_import_each_other():
    """Each tree imports the package and support/ (shared servers and harness), never another tree's modules. The one
    exception: test_benchmarks.py loads each script by its path, as `python benchmarks/NAME.py` does, to check that it
    still imports."""
    modules = {tree: {p.stem for p in (REPO / tree).glob("*.py")} for tree in TREES}
    wrong = []
    for tree in TREES:
        for path in (REPO / tree).glob("*.py"):
            if path.name == "test_benchmarks.py":
                continue
            found = local_imports(path)
            for other in set(TREES) - {tree}:
                reached = (found & (modules[other] - modules[tree])) | ({f"path:{other}"} & found)
                wrong += [f"{tree}/{path.name} reaches {other}: {sorted(reached)}"] if reached else []
    assert not wrong, "\n".join(wrong)
