"""``naskahd keygen -o FILE [--passphrase-file F] [--plain]``: a new age X25519 identity;
``naskahd keygen --recipient-of FILE``: the recipient (public key) of an existing one.

The identity is written passphrase-protected by default: an armored age file with a single
scrypt stanza, as ``age -p -a`` writes it, so ``age -d -i FILE`` opens it too. The
recipient (public key) goes to stdout, for ``naskahd init -r`` or the configuration; what
to do with the two goes to stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from naskahd.errors import NaskahdError, UsageError
from naskahd.i18n import _
from naskahd.oserrors import reason

MIN_PASSPHRASE = 12  # characters
ATTEMPTS = 3


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("keygen", help=_("create an age identity (secret key) protected by a passphrase"))
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("-o", "--output", metavar="FILE", help=_("identity file to create (never overwritten)"))
    what.add_argument("--recipient-of", metavar="FILE",
                      help=_("print the recipient (age1…) of an existing identity file; asks its passphrase"))
    p.add_argument("--passphrase-file", metavar="FILE", help=_("read the passphrase from FILE instead of asking"))
    p.add_argument("--plain", action="store_true", help=_("write the identity unprotected (for tests only)"))
    p.set_defaults(func=run)


def weakness(passphrase: str) -> str | None:
    """Why ``passphrase`` is too weak, or None."""
    if len(passphrase) < MIN_PASSPHRASE:
        return _("too short: use at least {n} characters; a few words that belong together are easy to "
                 "remember (for example: tiga kata yang mudah diingat)").format(n=MIN_PASSPHRASE)
    if len(set(passphrase)) < 5:
        return _("too simple: it repeats the same few characters; use a few different words")
    return None


def _passphrase(args: argparse.Namespace) -> bytes:
    if args.passphrase_file:
        try:
            with open(args.passphrase_file, "rb") as f:
                value = f.read().rstrip(b"\r\n")
        except OSError as exc:
            raise NaskahdError(
                _("cannot read passphrase file {path}: {error}").format(path=args.passphrase_file, error=reason(exc))
            ) from None
        if not value:
            raise UsageError(_("the passphrase file {path} is empty").format(path=args.passphrase_file))
        why = weakness(value.decode("utf-8", "replace"))
        if why is not None:
            raise UsageError(_("the passphrase in {path} is {why}; nothing was written").format(
                path=args.passphrase_file, why=why))
        return value
    from naskahd.cli.prompt import secret

    problem = ""
    for _attempt in range(ATTEMPTS):
        first = secret(_("Passphrase for the new identity: "))
        why = weakness(first)
        if why is not None:
            problem = _("refused, {why}").format(why=why)
            print(problem, file=sys.stderr)
            continue
        if secret(_("Same passphrase again: ")) == first:
            return first.encode()
        problem = _("the two entries differ; type it again")
        print(problem, file=sys.stderr)
    raise UsageError(_("no usable passphrase after {n} tries (the last: {problem}); nothing was written").format(
        n=ATTEMPTS, problem=problem))


def _recipient_of(args: argparse.Namespace) -> int:
    from naskahd.cli.decrypt_cmd import load_identities, passphrase_source

    identities = load_identities([args.recipient_of], passphrase_source(args.passphrase_file))
    for identity in identities:
        print(identity.recipient())
    return 0


def run(args: argparse.Namespace) -> int:
    from naskahd import age, durable

    if args.recipient_of:
        if args.plain:
            raise UsageError(_("--plain only goes with -o"))
        return _recipient_of(args)
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
        from naskahd.oserrors import describe

        raise NaskahdError(_("cannot write the identity file: {error}").format(error=describe(exc, target))) from None
    print(_("Created the identity (secret key) {path}.").format(path=target), file=sys.stderr)
    print(_("Next: put its recipient (the age1… line below) in the configuration on the server, "
            "[encryption] recipients = [\"age1…\"] in naskahd.toml (or give it to 'naskahd init -r'), "
            "then restart naskahd."), file=sys.stderr)
    print(_("Keep {path} and its passphrase offline with the Kasi (head of section), never on the server: "
            "without both, exempt letters cannot be opened; with both, anyone can open them.").format(
        path=target), file=sys.stderr)
    sys.stderr.flush()
    print(recipient)
    return 0
