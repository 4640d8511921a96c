"""The layout follows the pipeline: a stage never imports a later one, and the shared core imports no stage."""

import ast
from pathlib import Path

import cachetune

PACKAGE = Path(cachetune.__file__).parent
# Order of the stages; a module may import its own layer and the layers before it.
LAYERS = ["core", "data", "synth", "train", "export", "evaluate", "cache", "integrations", "pipeline", "cli"]
CORE = {"errors", "records", "settings", "text", "metrics", "replay", "models", "onnx_encoder", "facts", "decision", "conversation"}
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
