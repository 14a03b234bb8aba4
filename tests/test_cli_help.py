"""Every help screen of the ``hourglass-sep`` command runs: the top level, each verb's ``--help``
(through the installed entry point, as a user types it), and no help string holds a ``%``
that argparse would try to format."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hourglass_sep.cli import COMMANDS, build_parser, main

BIN = Path(sys.executable).parent
# argparse %-formats help strings: %% and %(name)s are meant, any other % is a crash
MEANT = re.compile(r"%%|%\([a-z_]+\)[sdrif]")


def bare_percent(text: str) -> bool:
    return "%" in MEANT.sub("", text)


def _help_strings(parser: argparse.ArgumentParser, where: str):
    """(where, text) of every string argparse %-formats (descriptions it prints as they are)."""
    for action in parser._actions:  # argparse keeps no public list of its actions
        yield f"{where} {'/'.join(action.option_strings) or action.dest}", action.help or ""
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                yield f"{where} {choice.dest}", choice.help or ""


def test_top_level_help_lists_every_verb(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for verb in COMMANDS:
        assert verb in out, verb


def test_no_verb_prints_the_help_and_fails(capsys):
    assert main([]) == 2
    assert "claims" in capsys.readouterr().out


@pytest.mark.parametrize("verb", list(COMMANDS))
def test_every_verb_help_runs_and_has_no_bare_percent(verb, capsys):
    parser = build_parser(verb)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    verb_parser = sub.choices[verb]
    strings = [*_help_strings(parser, "hourglass-sep"), *_help_strings(verb_parser, verb)]
    bad = [(where, text) for where, text in strings if bare_percent(text)]
    assert not bad, f"help strings with a % argparse would format (write %%): {bad}"
    with pytest.raises(SystemExit) as exc:
        main([verb, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: hourglass-sep {verb}" in out
    assert "%%" not in out  # an escape printed as it is


def test_bare_percent_check_would_catch_the_old_help():
    assert bare_percent("effects, 95 % intervals")
    assert not bare_percent("95 %% intervals, k %% N, default %(default)s")


@pytest.mark.parametrize("args", [["--help"], ["claims", "--help"], ["separate", "--help"]])
def test_installed_entry_point_help(args):
    exe = BIN / "hourglass-sep"
    if not exe.exists():
        pytest.skip(f"no installed hourglass-sep beside {sys.executable}")
    r = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("usage: hourglass-sep")
