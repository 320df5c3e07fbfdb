"""``naskahd user add|passwd|remove|list``: the web page's accounts (issue 21).

    naskahd user add NAME --role operator|kasi|kabid|viewer [--full-name TEXT] [--password-file F]
    naskahd user passwd NAME [--password-file F]
    naskahd user remove NAME
    naskahd user list [--json]

Without --password-file the password is asked on the terminal (twice), else read from
standard input. It is never printed or logged.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from naskahd.errors import EXIT_OK, UsageError
from naskahd.i18n import _


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from naskahd.web.auth import ROLES

    p = sub.add_parser("user", help=_("add, change, remove and list the web page's accounts"))
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help=_("add an account"))
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", required=True, choices=ROLES, help=_("what the account may do"))
    add.add_argument("--full-name", metavar="TEXT", help=_("the person's name, as written in signature blocks"))
    add.add_argument("--password-file", metavar="FILE", help=_("read the password from the first line of FILE"))
    add.set_defaults(func=run_add)
    pw = actions.add_parser("passwd", help=_("set a new password (signs the account out everywhere)"))
    pw.add_argument("name", metavar="NAME")
    pw.add_argument("--password-file", metavar="FILE", help=_("read the password from the first line of FILE"))
    pw.set_defaults(func=run_passwd)
    rm = actions.add_parser("remove", help=_("remove an account"))
    rm.add_argument("name", metavar="NAME")
    rm.set_defaults(func=run_remove)
    ls = actions.add_parser("list", help=_("list the accounts"))
    ls.add_argument("--json", action="store_true", help=_("machine-readable output"))
    ls.set_defaults(func=run_list)


def _open(args: argparse.Namespace) -> Any:
    from naskahd.cli.report_cmd import _open as open_register

    return open_register(args)[1]


def _password(args: argparse.Namespace) -> str:
    from naskahd.cli import prompt
    from naskahd.web.auth import check_password

    if args.password_file:
        try:
            with open(args.password_file, encoding="utf-8") as f:
                password = f.readline().rstrip("\r\n")
        except OSError as exc:
            raise UsageError(_("cannot read the password file {path}: {error}").format(
                path=args.password_file, error=exc.strerror)) from None
        check_password(password)
        return password
    password = prompt.secret(_("New password for {name}: ").format(name=args.name))
    check_password(password)
    if prompt.interactive():
        again = prompt.secret(_("The same password again: "))
        if again != password:
            raise UsageError(_("the two passwords differ; nothing was changed"))
    return password


def run_add(args: argparse.Namespace) -> int:
    from naskahd.web import auth

    auth.check_name(args.name)
    sessions = _open(args)
    user = auth.add(sessions, args.name, args.role, _password(args), args.full_name)
    print(_("Added user {name} with role {role}.").format(name=user.name, role=user.role))
    return EXIT_OK


def run_passwd(args: argparse.Namespace) -> int:
    from naskahd.web import auth

    sessions = _open(args)
    if not auth.exists(sessions, args.name):
        raise auth.AccountError(_("there is no user {name}; 'naskahd user list' shows them").format(name=args.name))
    auth.passwd(sessions, args.name, _password(args))
    print(_("New password set for {name}; their open sessions are signed out.").format(name=args.name))
    return EXIT_OK


def run_remove(args: argparse.Namespace) -> int:
    from naskahd.web import auth

    auth.remove(_open(args), args.name)
    print(_("Removed user {name}.").format(name=args.name))
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    from naskahd.web import auth

    rows = auth.listing(_open(args))
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return EXIT_OK
    if not rows:
        print(_("No users yet: add one with 'naskahd user add NAME --role ROLE'."))
    for r in rows:
        print(f"{r['name']:<20} {r['role']:<9} {r['full_name'] or ''}")
    return EXIT_OK
