"""``naskahd decrypt FILE... [-i IDENTITY ...] [--passphrase-file F] [-o OUT | --output-dir DIR]``.

Opens age files (binary or armored) with identity files (plain or passphrase-protected)
or, for ``age -p`` files, a passphrase. The plaintext goes to a file that gets its name
only once the whole file authenticated (``durable.create_unnamed``): on any failure, and
even if the process is killed, nothing is left behind.

Without ``-o``/``--output-dir`` the output goes into the current folder, never beside the
``.age`` file (that is the archive). No output is ever written inside naskahd's folders or
a backup drive (``places.inside_protected``): plaintext there would be archived or copied.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from naskahd.errors import AgeError, NaskahdError, UsageError
from naskahd.i18n import _
from naskahd.oserrors import reason


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("decrypt", help=_("decrypt age files (FILE.age -> FILE)"))
    p.add_argument("files", nargs="+", metavar="FILE", help=_("age file to decrypt"))
    p.add_argument("-i", "--identity", action="append", default=[], metavar="IDENTITY",
                   help=_("identity file (secret key), plain or passphrase-protected; repeatable"))
    p.add_argument("--passphrase-file", metavar="FILE",
                   help=_("passphrase for a protected identity file or an age -p file, instead of asking"))
    out = p.add_mutually_exclusive_group()
    out.add_argument("-o", "--output", metavar="OUT", help=_("output file (only with one FILE)"))
    out.add_argument("--output-dir", metavar="DIR", help=_("write the decrypted files into DIR"))
    p.set_defaults(func=run)


def passphrase_source(path: str | None) -> Callable[[str], Callable[[], bytes]]:
    """Make per-use callables: from --passphrase-file (read once), or a prompt."""
    cached: list[bytes] = []

    def for_prompt(prompt: str) -> Callable[[], bytes]:
        def get() -> bytes:
            if path:
                if not cached:
                    try:
                        with open(path, "rb") as f:
                            cached.append(f.read().rstrip(b"\r\n"))
                    except OSError as exc:
                        raise NaskahdError(
                            _("cannot read passphrase file {path}: {error}").format(path=path, error=reason(exc))
                        ) from None
                return cached[0]
            from naskahd.cli.prompt import secret

            return secret(prompt).encode()

        return get

    return for_prompt


def load_identities(paths: list[str], passphrase: Callable[[str], Callable[[], bytes]]) -> list:
    from naskahd import age

    identities: list = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read(1 << 20)
        except OSError as exc:
            raise AgeError(_("cannot read identity file {path}: {error}").format(path=path, error=reason(exc))) from None
        try:
            identities += age.parse_identity_file(data, passphrase(_("Passphrase for {path}: ").format(path=path)))
        except AgeError as exc:
            raise AgeError(_("identity file {path}: {reason}").format(path=path, reason=str(exc))) from None
    return identities


def _configuration(args: argparse.Namespace) -> Any | None:
    """The configuration, to know its folders; None when none can be read (an officer's
    own computer, or a configuration this user may not read): the root markers still
    protect naskahd's folders then. A --config given explicitly must load."""
    from naskahd import config

    try:
        return config.load(args.config)
    except NaskahdError:
        if args.config:
            raise
        return None


def _refuse_protected(target: Path, cfg: Any | None, default: bool) -> None:
    from naskahd import places

    place = places.inside_protected(target, cfg)
    if place is None:
        return
    if default:
        hint = _("change to a folder of your own first, or choose one with -o FILE or --output-dir DIR")
    else:
        hint = _("choose a folder of your own with -o FILE or --output-dir DIR")
    raise UsageError(_(
        "refusing to write the decrypted file {path} inside {place}: plaintext there would be filed, "
        "archived or copied to backup drives; {hint}").format(path=places.absolute(target), place=place, hint=hint))


def _targets(args: argparse.Namespace, cfg: Any | None = None) -> list[tuple[Path, Path]]:
    sources = [Path(f) for f in args.files]
    if args.output and len(sources) != 1:
        raise UsageError(_("-o takes one input file; use --output-dir for several"))
    pairs: list[tuple[Path, Path]] = []
    for source in sources:
        if args.output:
            target = Path(args.output)
        else:
            if source.suffix != ".age" or source.name == ".age":
                raise UsageError(
                    _("{path} does not end in .age, so the output name cannot be guessed; use -o").format(path=source))
            name = source.name[: -len(".age")]
            # Never beside the .age file by default: that is the archive.
            target = Path(args.output_dir or ".") / name
        _refuse_protected(target, cfg, default=not (args.output or args.output_dir))
        if target.exists() or target.is_symlink():
            raise NaskahdError(_("{path} already exists; refusing to overwrite it").format(path=target))
        if any(t.resolve() == target.resolve() for _s, t in pairs):
            raise UsageError(_("two inputs would be written to {path}").format(path=target))
        pairs.append((source, target))
    if args.output_dir and not Path(args.output_dir).is_dir():
        raise NaskahdError(_("the output folder {path} does not exist").format(path=args.output_dir))
    return pairs


def _decrypt_one(source: Path, target: Path, identities: list, passphrase: Callable[[], bytes]) -> None:
    from naskahd import age, durable

    try:
        src = open(source, "rb")
    except OSError as exc:
        raise NaskahdError(_("cannot read {path}: {error}").format(path=source, error=reason(exc))) from None
    try:
        # Plaintext is written as chunks authenticate, into a file with no name until the
        # whole file authenticated: a failed, interrupted or killed decryption leaves
        # nothing behind (on filesystems without O_TMPFILE: a temp file, removed on errors).
        with src, durable.create_unnamed(target, mode=0o600) as dst:
            age.decrypt_stream(src, dst, identities, passphrase)
    except AgeError as exc:
        raise AgeError(
            _("cannot decrypt {path}: {reason}. Nothing was written.").format(path=source, reason=str(exc))
        ) from None
    except FileExistsError:
        raise NaskahdError(_("{path} already exists; refusing to overwrite it").format(path=target)) from None
    except OSError as exc:
        raise NaskahdError(
            _("cannot decrypt {path} to {target}: {error}; nothing was written").format(
                path=source, target=target, error=reason(exc))
        ) from None


def run(args: argparse.Namespace) -> int:
    pairs = _targets(args, _configuration(args))
    passphrase = passphrase_source(args.passphrase_file)
    identities = load_identities(args.identity, passphrase)
    for source, target in pairs:
        _decrypt_one(source, target, identities, passphrase(_("Passphrase for {path}: ").format(path=source)))
        print(target)
    return 0
