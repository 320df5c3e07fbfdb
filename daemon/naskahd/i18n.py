"""gettext set-up. msgids are English; catalogs live in ``naskahd/locale``.

``_`` looks the translation up at call time, so modules can import it before
``setup()`` picks the language from ``--lang`` or the locale (``LANG=id_ID.UTF-8``).

``N_("...")`` only marks a string for extraction (``make catalogs``, pybabel's keyword
``N_``): error templates and tables of reasons are written with it and translated with
``_()`` when they are shown. argparse's own text (``usage:``, ``options:``, its error
lines) is translated too: :func:`setup` points argparse's gettext at this catalog, and
the msgids are listed in ``naskahd/cli/argparse_text.py``.

With ``$NASKAHD_I18N_MISSING`` set to a file, every msgid looked up in a language other
than English that the catalog lacks is appended to that file (tests/test_i18n.py).
"""

from __future__ import annotations

import contextvars
import gettext
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DOMAIN = "naskahd"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("id", "en")

_translation: gettext.NullTranslations = gettext.NullTranslations()
_code = "en"
# A language chosen for one piece of work (a web request, in its thread) instead of the
# process's: ``with using("en"): ...`` (the web page serves each reader in their language).
_override: contextvars.ContextVar[tuple[str, gettext.NullTranslations] | None] = contextvars.ContextVar(
    "naskahd_language", default=None)
_catalogs: dict[str, gettext.NullTranslations] = {}


def _active() -> tuple[str, gettext.NullTranslations]:
    return _override.get() or (_code, _translation)


@contextmanager
def using(lang: str) -> Iterator[str]:
    """Translate into ``lang`` inside the block (this thread or task only)."""
    code = normalize(lang)
    if code not in LANGUAGES:
        code = "en"
    if code not in _catalogs:
        _catalogs[code] = gettext.translation(DOMAIN, LOCALE_DIR, languages=[code], fallback=True)
    token = _override.set((code, _catalogs[code]))
    try:
        yield code
    finally:
        _override.reset(token)


def normalize(lang: str) -> str:
    """``id_ID.UTF-8`` → ``id``."""
    return lang.split(".")[0].split("@")[0].split("_")[0].split("-")[0].lower()


def from_environment() -> str | None:
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var)
        if value:
            return value.split(":")[0]
    return None


def setup(lang: str | None = None) -> str:
    """Choose the catalog: ``lang`` if given, else the environment's locale (an unknown
    language there means English; an unknown ``--lang`` is refused by the command line)."""
    global _translation, _code
    code = normalize(lang or from_environment() or "en")
    if code not in LANGUAGES:
        code = "en"
    _translation = gettext.translation(DOMAIN, LOCALE_DIR, languages=[code], fallback=True)
    _code = code
    _install_argparse()
    return code


def language() -> str:
    return _active()[0]


def _record_missing(message: str) -> None:
    path = os.environ.get("NASKAHD_I18N_MISSING")
    code, translation = _active()
    if not path or code == "en":
        return
    catalog = getattr(translation, "_catalog", {})
    if message not in catalog and message:
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(message.replace("\\", "\\\\").replace("\n", "\\n") + "\n")
        except OSError:
            pass


def _(message: str) -> str:
    code, translation = _active()
    if code != "en":
        _record_missing(message)
    return translation.gettext(message)


def N_(message: str) -> str:  # noqa: N802 - the gettext convention
    """Mark ``message`` for extraction; translate it with ``_()`` where it is shown."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    code, translation = _active()
    if code != "en":
        catalog = getattr(translation, "_catalog", {})
        if (singular, 0) not in catalog:
            _record_missing(singular)
    return translation.ngettext(singular, plural, n)


def _install_argparse() -> None:
    """argparse calls the module globals ``_`` and ``ngettext`` at run time."""
    import argparse

    argparse._ = _  # type: ignore[attr-defined]
    argparse.ngettext = ngettext  # type: ignore[attr-defined]


def translate_if_known(text: str) -> str:
    """``text`` translated when it is a msgid of the catalog, else as it is (stored plain
    text from before reasons had codes, or a detail that is not a message)."""
    return _active()[1].gettext(text)
