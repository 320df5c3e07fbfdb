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
