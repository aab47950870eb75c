"""indexer.cli.plugins: a command joins `pixdex` through one interface (a `Command`), built in or
from another package's entry point; its options are its own, and so are the settings it overrides."""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass

import pytest

from backfill.cli import COMMAND as BACKFILL
from indexer.cli import main as cli
from indexer.cli.plugins import Command, installed
from indexer.settings import Settings


@dataclass(frozen=True)
class Echo:
    word: str
    device: str | None


def _echo_command(seen: list) -> Command[Echo]:
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("word")
        p.add_argument("--device")

    def run(options: Echo, settings: Settings) -> int:
        seen.append((options, settings.device, settings.catalog))
        return 0

    return Command("echo", "say a word", add_arguments, run, options=lambda a: Echo(a.word, a.device),
                   settings=lambda o: {"device": o.device})


def test_the_backfill_joins_through_its_entry_point():
    assert BACKFILL in list(installed())
    assert "backfill" in cli.build_parser().format_help()


def test_a_command_gets_its_own_options_and_the_settings_they_override(tmp_path):
    seen: list = []
    db = f"sqlite:///{tmp_path / 'c.db'}"
    assert cli.main_of(_echo_command(seen), "echo", ["hello", "--device", "cpu", "--catalog", db]) == 0
    assert seen == [(Echo("hello", "cpu"), "cpu", db)]


def test_a_bug_in_a_command_is_one_line_and_exit_1_not_a_traceback(capsys):
    def broken(options: argparse.Namespace, settings: Settings) -> int:
        return {}["missing"]

    code = cli.main_of(Command("broken", "fails", lambda p: None, broken), "broken", [])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert err.strip() == ("pixdex: internal error: KeyError: 'missing' (a bug in pixdex; PIXDEX_DEBUG=1 shows "
                           "where)")


def test_python_m_backfill_is_the_backfill_alone():
    out = subprocess.run([sys.executable, "-m", "backfill", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: python -m backfill [-h] [--catalog URL]")
    assert "SOURCE" in out.stdout and "--max-failure-rate" in out.stdout


@pytest.mark.parametrize("argv", [["backfill", "--shard", "3/2", "/tmp"], ["index", "--batch-size", "0", "."]])
def test_bad_options_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2


def test_a_search_of_hundreds_of_labels_is_refused_with_exit_2(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    assert cli.main(["--catalog", db, "search", *(f"label{i}" for i in range(65))]) == 2
    assert "at most 32 labels" in capsys.readouterr().err
