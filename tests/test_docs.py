"""The front page and docs/ point at what exists: every relative link resolves, and every `cachetune` command they
quote is a real subcommand whose `--help` exits 0 and whose quoted options it takes."""

import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cachetune.cli import app

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"```[^\n]*\n(.*?)```|`([^`\n]+)`", re.S)
COMMAND = re.compile(r"(?<![\w.-])cachetune ([a-z][a-z-]*)((?:[^\n;&|#]|\\\n)*)")
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def quoted_commands(text: str) -> list[tuple[str, list[str]]]:
    """(subcommand, options) of each `cachetune SUB ...` inside code spans and blocks (not `from cachetune import`)."""
    found = []
    for block, span in CODE.findall(text):
        for match in COMMAND.finditer(block or span):
            line_start = (block or span)[: match.start()].rsplit("\n", 1)[-1]
            if line_start.rstrip().endswith(("from", "import")):
                continue
            found.append((match.group(1), OPTION.findall(match.group(2))))
    return found


def test_there_is_a_short_readme_and_a_docs_folder():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 220, len(lines)
    first_screen = "\n".join(lines[:60])
    assert "make demo" in first_screen and "make test" in first_screen
    for stage in ("prepare", "generate", "mine", "train", "evaluate", "serve"):
        assert f"cachetune {stage} " in first_screen, stage
    assert len(PAGES) >= 6


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_exists(page):
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        assert path.exists(), f"{page.name}: link to {target}, which does not exist"


def test_every_quoted_command_exists_with_its_options():
    commands = {name: command for name, command in typer.main.get_command(app).commands.items()}
    quoted = {}
    for page in PAGES:
        for name, options in quoted_commands(page.read_text()):
            assert name in commands, f"{page.name}: `cachetune {name}` is not a command"
            quoted.setdefault(name, set()).update(options)
    assert {"prepare", "generate", "mine", "train", "evaluate", "serve", "pipeline", "litellm-config"} <= set(quoted)
    runner = CliRunner()
    for name, options in quoted.items():
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, f"cachetune {name} --help: {result.output}"
        known = {opt for param in commands[name].params for opt in (*param.opts, *param.secondary_opts)} | {"--help"}
        assert options <= known, f"`cachetune {name}` quoted with {sorted(options - known)}, which it does not take"


EXAMPLE_ROW = re.compile(r"^\| (rewording|look-alike)[^|]*\| ([^|]+) \| ([^|]+) \| ([0-9.]+) \| ([0-9.]+) \|$", re.M)


def test_the_front_pages_example_is_true_of_the_shipped_adapter():
    """The README's rewording and look-alike, with the cosines it quotes for the base model and the programming adapter:
    the base orders them wrongly, the adapter rightly, by the margins quoted."""
    from cachetune.models import load_model

    rows = {
        kind: (stored, new, float(base), float(tuned))
        for kind, stored, new, base, tuned in EXAMPLE_ROW.findall((ROOT / "README.md").read_text())
    }
    assert set(rows) == {"rewording", "look-alike"} and rows["rewording"][0] == rows["look-alike"][0]
    stored = rows["rewording"][0]
    for column, model in ((2, load_model(None)), (3, load_model("programming"))):
        vectors = model.encode([stored, rows["rewording"][1], rows["look-alike"][1]], normalize_embeddings=True)
        cosines = {"rewording": float(vectors[0] @ vectors[1]), "look-alike": float(vectors[0] @ vectors[2])}
        assert all(abs(cosines[kind] - rows[kind][column]) < 0.0015 for kind in rows), (column, cosines)
    assert rows["rewording"][2] < rows["look-alike"][2] and rows["rewording"][3] > rows["look-alike"][3]
