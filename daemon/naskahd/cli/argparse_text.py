"""argparse's own messages, marked for extraction so that they are in naskahd's catalog.

argparse looks them up with its module-level ``_``/``ngettext``, which
``naskahd.i18n.setup`` points at naskahd's catalog; the msgids are argparse's, exactly
(Python 3.11 to 3.13). Nothing imports this module: it exists for ``make catalogs``.
"""

from naskahd.i18n import N_, ngettext

ARGPARSE_MESSAGES = (
    N_("usage: "),
    N_("positional arguments"),
    N_("options"),
    N_("show this help message and exit"),
    N_("%(prog)s: error: %(message)s\n"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("unrecognized arguments: %s"),
    N_("not allowed with argument %s"),
    N_("ignored explicit argument %r"),
    N_("the following arguments are required: %s"),
    N_("one of the arguments %s is required"),
    N_("expected one argument"),
    N_("expected at most one argument"),
    N_("expected at least one argument"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
    N_("unexpected option string: %s"),
    N_("invalid %(type)s value: %(value)r"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("unknown parser %(parser_name)r (choices: %(choices)s)"),
    N_("can't open '%(filename)s': %(error)s"),
)


def _plurals(n: int) -> tuple[str, ...]:
    return (
        ngettext("expected %s argument", "expected %s arguments", n),
        ngettext("conflicting option string: %s", "conflicting option strings: %s", n),
    )
