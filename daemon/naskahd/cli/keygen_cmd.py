"""``naskahd keygen -o FILE [--passphrase-file F] [--plain]``: a new age X25519 identity.

The identity is written passphrase-protected by default: an armored age file with a single
scrypt stanza, as ``age -p -a`` writes it, so ``age -d -i FILE`` opens it too. The
recipient (public key) goes to stdout, for ``naskahd init -r`` or the configuration.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from naskahd.errors import NaskahdError, UsageError
from naskahd.i18n import _


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("keygen", help=_("create an age identity (secret key) protected by a passphrase"))
    p.add_argument("-o", "--output", required=True, metavar="FILE", help=_("identity file to create (never overwritten)"))
    p.add_argument("--passphrase-file", metavar="FILE", help=_("read the passphrase from FILE instead of asking"))
    p.add_argument("--plain", action="store_true", help=_("write the identity unprotected (for tests only)"))
    p.set_defaults(func=run)


def _passphrase(args: argparse.Namespace) -> bytes:
    if args.passphrase_file:
        try:
            with open(args.passphrase_file, "rb") as f:
                value = f.read().rstrip(b"\r\n")
        except OSError as exc:
            raise NaskahdError(
                _("cannot read passphrase file {path}: {error}").format(path=args.passphrase_file, error=exc.strerror)
            ) from None
        if not value:
            raise UsageError(_("the passphrase file {path} is empty").format(path=args.passphrase_file))
        return value
    import getpass

    first = getpass.getpass(_("Passphrase for the new identity: "))
    if not first:
        raise UsageError(_("the passphrase is empty; nothing was written"))
    if getpass.getpass(_("Same passphrase again: ")) != first:
        raise UsageError(_("the passphrases differ; nothing was written"))
    return first.encode()


def run(args: argparse.Namespace) -> int:
    from naskahd import age, durable

    target = Path(args.output)
    if args.plain and args.passphrase_file:
        raise UsageError(_("--plain and --passphrase-file exclude each other"))
    if target.exists() or target.is_symlink():
        raise NaskahdError(_("{path} already exists; refusing to overwrite an identity file").format(path=target))
    if not target.parent.is_dir():
        raise NaskahdError(_("the folder {path} does not exist").format(path=target.parent))

    identity = age.generate_identity()
    recipient = str(identity.recipient())
    created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    text = f"# created: {created}\n# public key: {recipient}\n{identity}\n".encode()
    if args.plain:
        print(_("warning: writing the identity UNPROTECTED to {path}; anyone who can read it can decrypt").format(
            path=target), file=sys.stderr)
        data = text
    else:
        data = age.armor(age.encrypt_bytes(text, [age.ScryptRecipient(_passphrase(args))]))
    try:
        durable.write_bytes(target, data, mode=0o600)
    except FileExistsError:
        raise NaskahdError(_("{path} already exists; refusing to overwrite an identity file").format(path=target)) from None
    except OSError as exc:
        raise NaskahdError(_("cannot write {path}: {error}").format(path=target, error=exc.strerror)) from None
    print(recipient)
    return 0
