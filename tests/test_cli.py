import subprocess
import sys
from pathlib import Path


def test_help_lists_the_built_subcommands():
    cachetune = Path(sys.executable).with_name("cachetune")
    result = subprocess.run([str(cachetune), "--help"], capture_output=True, text=True, check=True)
    for command in ("prepare",):
        assert command in result.stdout
