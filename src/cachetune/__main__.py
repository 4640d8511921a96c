"""`python -m cachetune`, as `torchrun -m cachetune train ...` needs."""

from cachetune.cli import run

run()
