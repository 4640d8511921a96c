"""How long the test suite takes on this machine, and where its time goes.

    .venv/bin/python benchmarks/suite_time.py                       # pytest as `make test` runs it
    .venv/bin/pip install pytest-xdist                              # not in the lock: only for this comparison
    .venv/bin/python benchmarks/suite_time.py --name suite_time_xdist --env OMP_NUM_THREADS=1 -- -n 2 --dist loadfile

Runs `python -m pytest ARGS` from the repository root and records its wall time, the CPU time of pytest and of every
process it started and waited for (servers, CLI runs, training workers), the outcome line and the slowest tests. CPU
seconds over the machine's cores is the shortest wall time any way of running the same work here could reach.
Writes results/NAME.{json,md}.
"""

import argparse
import os
import re
import resource
import subprocess
import sys
import time

from common import REPO, machine, save, table

DURATION = re.compile(r"^\s*([\d.]+)s (call|setup|teardown)\s+(\S+)")


def run_suite(pytest_args: list[str], env: dict[str, str], slowest: int) -> dict:
    """One pytest run: wall and CPU seconds, its outcome line, and its `slowest` longest phases."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--durations={slowest}", *pytest_args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = result.stdout.splitlines()
    phases = [match.groups() for line in lines if (match := DURATION.match(line))]
    return {
        "command": ["python", *command[1:]],
        "env": env,
        "returncode": result.returncode,
        "outcome": next((line.strip("= ") for line in reversed(lines) if " in " in line and ("passed" in line or "failed" in line)), ""),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "cores_busy": round(cpu / wall, 2),
        "floor_s": round(cpu / (os.cpu_count() or 1), 1),
        "slowest": [{"seconds": float(seconds), "phase": phase, "test": test} for seconds, phase, test in phases],
    }


def markdown(run: dict, info: dict) -> str:
    env = " ".join(f"{key}={value}" for key, value in run["env"].items())
    lines = [
        f"# The test suite's time: `{env + ' ' if env else ''}{' '.join(run['command'])}`",
        "",
        f"{info['cpu_model']}, {info['cpus']} CPUs (threads as the title's environment sets them). Outcome: {run['outcome']}.",
        "",
        *table(
            ["wall s", "CPU s (pytest and its processes)", "cores busy on average", "CPU s / cores"],
            [[run["wall_s"], run["cpu_s"], run["cores_busy"], run["floor_s"]]],
        ),
        "",
        "The slowest phases:",
        "",
        *table(["seconds", "phase", "test"], [[p["seconds"], p["phase"], f"`{p['test']}`"] for p in run["slowest"]]),
    ]
    return "\n".join(lines)


def env_setting(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not name or not equals:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE")
    return name, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="suite_time", help="results/NAME.{json,md}")
    parser.add_argument("--env", action="append", default=[], type=env_setting, metavar="NAME=VALUE", help="set in pytest's environment")
    parser.add_argument("--slowest", type=int, default=25, help="how many of the slowest phases to keep")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    args = parser.parse_args()
    env = dict(args.env)
    run = run_suite(args.pytest_args, env, args.slowest)
    info = machine()
    save(args.name, {"machine": info, **run}, markdown(run, info))
    if run["returncode"] != 0:
        sys.exit(f"pytest exited with {run['returncode']}: {run['outcome']}")


if __name__ == "__main__":
    main()
