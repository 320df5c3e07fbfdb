"""The command-line entry point: a command's parser is built alone only when that is safe."""

from __future__ import annotations

import pytest

from naskahd import cli


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["encrypt", "a.pdf", "-r", "age1x"], "encrypt"),
        (["--config", "/etc/x.toml", "status", "--json"], "status"),
        (["--lang=id", "--config=/x.toml", "list"], "list"),
        (["--lang", "en", "decrypt", "--help"], "decrypt"),
        # Anything that is not plainly "options we know, then a command" builds every parser,
        # so that help and errors list all commands.
        (["--help"], None),
        ([], None),
        (["--conf", "/x.toml", "status"], None),  # argparse's abbreviation: not guessed here
        (["encrpyt"], None),
        (["--config"], None),
    ],
)
def test_command_in(argv: list[str], command: str | None) -> None:
    assert cli._command_in(argv) == command


def test_full_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--lang", "en", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out, out


def test_a_misspelt_command_is_refused_with_the_list(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--lang", "en", "encrpyt"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "encrypt" in err and "decrypt" in err and "status" in err, err


def test_one_commands_parser_parses_it_alone() -> None:
    args = cli.build_parser("encrypt").parse_args(["encrypt", "a.pdf", "-r", "age1x"])
    assert args.command == "encrypt"
    with pytest.raises(SystemExit):  # the others are not there
        cli.build_parser("encrypt").parse_args(["status"])


def _parsers(parser, path=()):  # type: ignore[no-untyped-def]
    """Every (sub)command's parser, however deep, with the words that reach it."""
    import argparse

    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, nested in action.choices.items():
                yield from _parsers(nested, (*path, name))


def test_every_command_and_subcommand_takes_the_global_options_after_it() -> None:
    """``--config`` and ``--lang`` after any command, nested ones too (``report list``)."""
    found = list(_parsers(cli.build_parser()))
    assert any(path == ("report", "list") for path, _p in found) and any(path == ("drive", "list") for path, _p in found)
    for path, parser in found:
        assert "--config" in parser._option_string_actions and "--lang" in parser._option_string_actions, path


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "list", "--config", "/x.toml", "--lang", "en"],
        ["report", "list", "--json", "--lang=en", "--config=/x.toml"],
        ["report", "review", "3", "--by", "Ani", "--config", "/x.toml", "--lang", "en"],
        ["report", "show", "3", "--lang", "en", "--config", "/x.toml"],
        ["report", "--month", "2026-11", "--config", "/x.toml", "--lang", "en"],
        ["drive", "list", "--config", "/x.toml", "--lang", "en"],
        ["--config", "/y.toml", "--lang", "id", "report", "list", "--config", "/x.toml", "--lang", "en"],
    ],
)
def test_global_options_after_a_nested_subcommand(argv: list[str]) -> None:
    args = cli.build_parser(cli._command_in(argv)).parse_args(argv)
    assert (args.config, args.lang) == ("/x.toml", "en")


def test_global_options_before_a_nested_subcommand_are_kept() -> None:
    args = cli.build_parser().parse_args(["--config", "/y.toml", "report", "list", "--json"])
    assert args.config == "/y.toml" and args.lang is None
