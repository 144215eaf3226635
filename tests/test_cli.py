"""The command line as a new user meets it: every command's --help shows a working example, unbroken;
global options go before or after the command; mistakes get a suggestion and a message naming the fix."""
from __future__ import annotations

import shlex
import subprocess
import sys
import time

import click
import pytest
from click.testing import CliRunner

from circuit_atlas.cli import main
from circuit_atlas.ingest import ingest_paths
from tests.conftest import REPO
from tests.test_store import _hold_store

FIXTURES = sorted((REPO / "tests/fixtures/formats/real").glob("*.json.gz"))


def all_commands() -> list[tuple[list[str], click.Command]]:
    def walk(cmd, path):
        yield path, cmd
        if isinstance(cmd, click.Group):
            for name, sub in sorted(cmd.commands.items()):
                yield from walk(sub, [*path, name])
    return list(walk(main, []))


def examples(command: click.Command) -> list[list[str]]:
    """The example commands in a command's docstring: lines starting with `circuit-atlas`, each with
    its continuation lines (a line ending in a backslash continues)."""
    out, current = [], None
    for line in (command.help or "").splitlines():
        text = line.strip()
        if current is not None:
            current.append(text)
        elif text.startswith("circuit-atlas "):
            current = [text]
        if current is not None and not text.endswith("\\"):
            out.append(current)
            current = None
    return out


def render_help(path: list[str], width: int) -> str:
    result = CliRunner().invoke(main, [*path, "--help"], terminal_width=width)
    assert result.exit_code == 0, result.output
    return result.output


LEAVES = [(path, cmd) for path, cmd in all_commands() if not isinstance(cmd, click.Group)]


@pytest.mark.parametrize("path,command", LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_every_command_shows_an_example(path, command):
    assert examples(command), f"circuit-atlas {' '.join(path)}: its docstring has no example (`circuit-atlas ...`)"


@pytest.mark.parametrize("path,command", all_commands(), ids=[" ".join(p) or "(main)" for p, _ in all_commands()])
@pytest.mark.parametrize("width", [80, 60])
def test_help_examples_are_not_rewrapped(path, command, width):
    """Each example line appears whole, on a line of its own, in the rendered help (click re-wraps a
    paragraph unless a \\b line precedes it; docs: "Preventing Rewrapping")."""
    shown = {line.strip() for line in render_help(path, width).splitlines()}
    for example in examples(command):
        for line in example:
            assert line in shown, f"circuit-atlas {' '.join(path)} --help breaks the example line {line!r}"


def _parse(argv: list[str]) -> click.Context:
    ctx = main.make_context("circuit-atlas", list(argv))
    while isinstance(ctx.command, click.Group):
        name, sub, rest = ctx.command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        ctx = sub.make_context(name, rest, parent=ctx)
    return ctx


@pytest.mark.parametrize("path,command", all_commands(), ids=[" ".join(p) or "(main)" for p, _ in all_commands()])
def test_help_examples_are_valid_commands(path, command):
    """Every example parses: its command exists and takes those options (files it names need not exist)."""
    for example in examples(command):
        argv = shlex.split(" ".join(line.rstrip("\\") for line in example))[1:]
        try:
            ctx = _parse(argv)
        except click.BadParameter as e:
            assert "does not exist" in e.format_message(), (example, e.format_message())
            continue
        except click.UsageError as e:
            raise AssertionError(f"example {' '.join(example)!r}: {e.format_message()}") from None
        assert ctx.command_path.split()[1:] == path or not path, (example, ctx.command_path)


# ----------------------------------------------------------------------------- global options

@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    uri = str(tmp_path_factory.mktemp("cli") / "atlas.db")
    assert ingest_paths(uri, FIXTURES, log=lambda line: None).new == len(FIXTURES)
    return uri


def cli(*args: str, env: dict, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "circuit_atlas", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)


def test_store_is_accepted_after_the_command(store, cli_env, tmp_path):
    count = ["MATCH (g:Graph) RETURN count(g) AS n", "--format", "csv"]
    for args in (["--store", store, "cypher", *count], ["cypher", *count, "--store", store],
                 ["--store", str(tmp_path / "elsewhere.db"), "cypher", *count, "--store", store]):  # the later wins
        result = cli(*args, env=cli_env)
        assert (result.returncode, result.stdout) == (0, f"n\n{len(FIXTURES)}\n"), (args, result.stderr)
    for args in (["query", "hubs-by-graphs", "-p", "limit=1", "--store", store], ["check", "--store", store, "-q"],
                 ["audit", "list", "--store", store], ["supernodes", "propose", "--store", store, "-p", "min_graphs=2"]):
        result = cli(*args, env=cli_env, cwd=tmp_path)      # no ./atlas.db there: only --store can name it
        assert result.returncode == 0, (args, result.stderr)
    assert not (tmp_path / "atlas.db").exists()


def test_one_lock_timeout_setting_for_every_open(store, cli_env):
    """Flag (before or after the command) or environment variable; ingest obeys it too (it waited a
    fixed 60 s while a long reader held the store)."""
    holder = _hold_store(store)                           # held until killed below
    try:
        cases = [(["--lock-timeout", "0.5", "ingest", "-q", str(FIXTURES[0])], cli_env),
                 (["cypher", "MATCH (g:Graph) RETURN count(g) AS n", "--lock-timeout", "0.5"], cli_env),
                 (["check", "-q"], {**cli_env, "CIRCUIT_ATLAS_LOCK_TIMEOUT": "0.5"})]
        for args, env in cases:
            start = time.monotonic()
            result = cli("--store", store, *args, env=env)
            assert result.returncode == 1 and "stayed locked for 0.5s" in result.stderr, (args, result.stderr)
            assert "--lock-timeout" in result.stderr                       # the message names the knob
            assert time.monotonic() - start < 30, args                     # not the default 60 s
    finally:
        holder.kill()
        holder.wait()
    result = cli("--store", store, "check", "-q", env={**cli_env, "CIRCUIT_ATLAS_LOCK_TIMEOUT": "soon"})
    assert result.returncode == 1 and "CIRCUIT_ATLAS_LOCK_TIMEOUT" in result.stderr and \
        "expected a number of seconds" in result.stderr, result.stderr


# ----------------------------------------------------------------------------------- mistakes

@pytest.mark.parametrize("args,message", [
    (["query", "hub-by-graph"], "Error: no query named 'hub-by-graph'; did you mean 'hubs-by-graphs'"),
    (["query", "hubs-by-graphs", "-p", "limt=3"], "has no parameter $limt; did you mean 'limit'?"),
    (["query", "hubs-by-graphs", "-p", "limit=ten"],
     "Error: query 'hubs-by-graphs': parameter limit: 'ten' is not an integer; give e.g. --param limit=25"),
    (["query", "hubs-by-graphs", "-p", "limit=1.5"], "parameter limit: 1.5 is not an integer"),
    (["query", "hubs-by-graphs", "-p", "limit=-3"],
     "Error: query 'hubs-by-graphs': parameter limit: -3 is negative; give e.g. --param limit=25"),
    (["query", "feature-graphs", "-p", "fkey=x", "-p", "limit=many"], "parameter limit: 'many' is not an integer"),
    (["qurey", "hubs-by-graphs"], "No such command 'qurey'. Did you mean 'query'?"),
])
def test_mistakes_get_a_suggestion_in_one_line(store, cli_env, args, message):
    result = cli("--store", store, *args, env=cli_env)
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "is not a int" not in result.stderr


@pytest.mark.parametrize("args", [
    ["query", "hubs-by-graphs"], ["query", "common-paths"], ["query", "common-paths", "-p", "min_weight=0.5"],
    ["query", "multilingual-iou"], ["query", "propose-supernodes", "-p", "dry_run=true"], ["query", "search-graphs"],
    ["query", "search-features", "-p", "text=say"], ["supernodes", "propose", "-p", "dry_run=true"],
    ["plot", "multilingual"], ["plot", "paths"],
])
def test_query_timeout_reaches_every_statement_of_an_analysis(store, cli_env, args):
    """--timeout is the limit of each statement a named query sends, an analysis's too: common-paths on
    Neo4j needed more than the default 60 s on 62 real graphs under load, and its inner statements
    ignored the caller's limit. A timeout of 0 is refused by the store, so it must reach a statement."""
    result = cli("--store", store, *args, "--timeout", "0", env=cli_env)
    assert result.returncode == 1, (args, result.stdout, result.stderr)
    assert "Error: the timeout must be a number of seconds greater than 0, not 0.0" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
