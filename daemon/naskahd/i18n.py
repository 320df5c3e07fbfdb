"""gettext set-up. msgids are English; catalogs live in ``naskahd/locale``.

``_`` looks the translation up at call time, so modules can import it before
``setup()`` picks the language from ``--lang`` or the locale (``LANG=id_ID.UTF-8``).
"""

from __future__ import annotations

import gettext
import os
from pathlib import Path

DOMAIN = "naskahd"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("id", "en")

_translation: gettext.NullTranslations = gettext.NullTranslations()


def setup(lang: str | None = None) -> str:
    """Choose the catalog: ``lang`` if given, else the environment's locale."""
    global _translation
    if lang is None:
        for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
            value = os.environ.get(var)
            if value:
                lang = value.split(":")[0]
                break
    code = (lang or "en").split(".")[0].split("_")[0].lower()
    if code not in LANGUAGES:
        code = "en"
    _translation = gettext.translation(DOMAIN, LOCALE_DIR, languages=[code], fallback=True)
    return code


def _(message: str) -> str:
    return _translation.gettext(message)


def N_(message: str) -> str:  # noqa: N802 - the gettext convention
    """Mark ``message`` for extraction; translate it where it is shown."""
    return message


def translate_if_known(text: str) -> str:
    """``text`` translated when it is a msgid of the catalog, else as it is: for msgids
    held in variables, marked with ``N_("...")`` where they were written (``_()`` itself
    takes literals only, so that every string is extracted)."""
    return _translation.gettext(text)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translation.ngettext(singular, plural, n)
