"""``naskahd web [--listen HOST:PORT] [--make-cert]``: the office's web page (issue 21).

By default on 127.0.0.1 only; a LAN address (``--listen`` or ``[web] listen``) is served
over HTTPS only. ``--make-cert`` makes a new self-signed certificate in the state folder
(the old one is kept beside it as .old) and exits.
"""

from __future__ import annotations

import argparse

from naskahd.errors import EXIT_OK
from naskahd.i18n import _


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("web", help=_("serve the office's web page (dashboard, register, reviews, reports)"))
    p.add_argument("--listen", metavar="HOST:PORT", help=_("where to listen (default: [web] listen, 127.0.0.1:8080)"))
    p.add_argument("--make-cert", action="store_true",
                   help=_("make a new self-signed HTTPS certificate in the state folder and exit"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from naskahd import config
    from naskahd.web import server, tls

    cfg = config.load(args.config)
    if args.make_cert:
        host, _port, _https = server.plan(cfg, args.listen)
        cert, key = tls.default_paths(cfg.state)
        fingerprint = tls.make_self_signed(cert, key, [host])
        print(_("Made the web page's HTTPS certificate {path} (SHA-256 fingerprint {fingerprint})").format(
            path=cert, fingerprint=fingerprint))
        if cfg.web_certificate is not None:
            print(_("Note: [web] certificate points at {path}, which is what the page uses").format(path=cfg.web_certificate))
        return EXIT_OK
    server.serve(cfg, args.listen)
    return EXIT_OK
