"""The ``naskahd`` command line: one module per command, ``<name>_cmd.py``.

Each command module defines ``register(subparsers)``, which adds its parser and sets
``func`` to its ``run(args) -> int``. Errors from ``naskahd.errors`` are turned into a
message and an exit code here, and only here.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from naskahd import __version__, hardening, i18n
from naskahd.errors import EXIT_ATTENTION, EXIT_USAGE, NaskahdError
from naskahd.i18n import _

COMMANDS = ("init", "run", "status", "list", "review", "duplicates", "keygen", "encrypt", "decrypt", "drive", "sync",
            "verify", "restore", "log", "report", "annotate", "reload", "check-config", "user", "web")


def _language(value: str) -> str:
    code = i18n.normalize(value)
    if code not in i18n.LANGUAGES:
        raise argparse.ArgumentTypeError(_("unknown language {value!r}; known languages: {known}").format(
            value=value, known=", ".join(i18n.LANGUAGES)))
    return code


def _global_options(parser: argparse.ArgumentParser, default: object = None) -> None:
    """``--config`` and ``--lang``: before the command, or after it (``naskahd status --config X``).

    After the command they default to SUPPRESS, so that they do not undo a value given before it.
    """
    parser.add_argument(
        "--config", metavar="PATH", default=default,
        help=_("configuration file (default: $NASKAHD_CONFIG, then /etc/naskahd/naskahd.toml)"),
    )
    parser.add_argument("--lang", metavar="LANG", type=_language, default=default,
                        help=_("language of messages: id or en"))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or with ``command`` only that command's (the others'
    modules are then not imported: ``naskahd encrypt`` starts faster without them)."""
    parser = argparse.ArgumentParser(
        prog="naskahd",
        description=_("Files scanned official letters into an archive and a register."),
    )
    parser.add_argument("--version", action="version", version=f"naskahd {__version__}",
                        help=_("show the version and exit"))
    _global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in (command,) if command in COMMANDS else COMMANDS:
        module = importlib.import_module(f"naskahd.cli.{name.replace('-', '_')}_cmd")
        module.register(sub)
    seen: set[int] = set()
    for subparser in sub.choices.values():
        _after_commands(subparser, seen)
    return parser


def _after_commands(parser: argparse.ArgumentParser, seen: set[int]) -> None:
    """The global options on ``parser`` and on every subcommand below it, however deep
    (``naskahd report list --config X``, ``naskahd drive list --lang en``); an alias's
    parser only once."""
    if id(parser) in seen:
        return
    seen.add(id(parser))
    _global_options(parser, argparse.SUPPRESS)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for nested in action.choices.values():
                _after_commands(nested, seen)


def _lang_from_argv(argv: Sequence[str]) -> str | None:
    """The ``--lang`` value anywhere on the command line (the last one wins), if known."""
    found = None
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--lang" and i + 1 < len(argv):
            found = argv[i + 1]
        elif arg.startswith("--lang="):
            found = arg.split("=", 1)[1]
    if found is not None and i18n.normalize(found) not in i18n.LANGUAGES:
        return None  # refused by the parser, in the locale's language
    return found


def _command_in(argv: Sequence[str]) -> str | None:
    """The command ``argv`` runs, if only ``--config`` and ``--lang`` come before it.

    Anything else (``--help``, an abbreviated option, no command) gives None, and then the
    whole parser is built, so that help and error messages list every command.
    """
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--config", "--lang"):
            i += 2
        elif arg.startswith(("--config=", "--lang=")):
            i += 1
        else:
            return arg if arg in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    hardening.no_core_dumps()  # before anything reads a key or a letter (hardening.py)
    argv = list(sys.argv[1:] if argv is None else argv)
    # The language must be chosen before the parsers' help texts are built.
    i18n.setup(_lang_from_argv(argv))
    args = build_parser(_command_in(argv)).parse_args(argv)
    try:
        return int(args.func(args))
    except NaskahdError as exc:
        print(f"naskahd: {exc.render()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_ATTENTION
    except EOFError:
        # A prompt (a passphrase) with no terminal and nothing on standard input.
        print("naskahd: " + _("nothing to read a passphrase from: there is no terminal and standard input "
                             "is empty; run the command in a terminal, or give --passphrase-file FILE"), file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        from naskahd.oserrors import describe

        print(f"naskahd: {describe(exc)}", file=sys.stderr)
        return EXIT_ATTENTION
    except Exception as exc:  # noqa: BLE001 - the last line of "no tracebacks, ever"
        print("naskahd: " + _("unexpected error ({kind}: {error}); nothing more was done. Please report it "
                             "with the command you ran").format(kind=type(exc).__name__, error=exc), file=sys.stderr)
        return EXIT_ATTENTION
