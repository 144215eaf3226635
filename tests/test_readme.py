"""README's examples print what the commands print.

Two kinds of examples are checked: every ```console block (lines starting with "$ " are commands, run in
order in an empty folder that sees the repository's tests/; the lines under a command must appear in
its output, in order), and a block announced by `<!-- output of: COMMAND -->` (COMMAND run in an empty
folder). "..." marks lines left out; blank lines are not compared.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def console_blocks() -> list[list[tuple[str, list[str]]]]:
    """[[(command, expected lines), ...] per ```console block]."""
    blocks = []
    for body in re.findall(r"```console\n(.*?)```", README, re.S):
        steps = []
        for line in body.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif steps:
                steps[-1][1].append(line)
        blocks.append(steps)
    return blocks


def announced_blocks() -> list[tuple[str, list[str]]]:
    return [(cmd, body.splitlines()) for cmd, body in re.findall(r"<!-- output of: (.+?) -->\n```\n(.*?)```", README, re.S)]


def run(command: str, cwd) -> str:
    args = shlex.split(command)
    assert args[0] == "circuit-atlas", command
    env = {k: v for k, v in os.environ.items() if k != "CIRCUIT_ATLAS_STORE"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    done = subprocess.run([sys.executable, "-m", "circuit_atlas", *args[1:]], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=1200)
    assert done.returncode == 0, f"{command}\n{done.stderr}"
    return done.stdout


def assert_shows(expected: list[str], output: str, command: str) -> None:
    """Every expected line (but '...' and blanks) is an output line, in the same order."""
    lines = [line.rstrip() for line in output.splitlines()]
    at = 0
    for want in (w.rstrip() for w in expected if w.strip() and w.strip() != "..."):
        try:
            at = lines.index(want, at) + 1
        except ValueError:
            pytest.fail(f"README shows a line that `{command}` does not print (in that order):\n  {want}\n"
                        f"it printed:\n" + "\n".join(lines))


def test_readme_has_checked_examples():
    assert console_blocks() and any(cmd == "circuit-atlas demo" for cmd, _ in announced_blocks())


@pytest.mark.parametrize("index", range(len(console_blocks())))
def test_console_examples_print_what_readme_shows(index, tmp_path):
    (tmp_path / "tests").symlink_to(REPO / "tests")
    for command, expected in console_blocks()[index]:
        assert_shows(expected, run(command, tmp_path), command)


@pytest.mark.slow
@pytest.mark.parametrize("command", [cmd for cmd, _ in announced_blocks()])
def test_announced_outputs_match(command, tmp_path):
    [expected] = [lines for cmd, lines in announced_blocks() if cmd == command]
    assert_shows(expected, run(command, tmp_path), command)
