"""Translations: every user-facing string has an Indonesian translation, its str.format
placeholders are those of the English msgid, the committed .mo files are compiled from the
committed .po files, and the real CLI speaks Indonesian when asked to.

The strings are found by the same extraction as ``scripts/update-catalogs`` (imported from
it): ``_("...")``/``ngettext(...)`` literals, the ``message`` templates of the NaskahdError
classes, and ``_(var)`` where ``var`` only ever holds literals. When a test here fails after
a code change: run ``scripts/update-catalogs``, fill in the empty or fuzzy msgstr in
``daemon/naskahd/locale/id/LC_MESSAGES/naskahd.po``, run the script again, commit.
"""

from __future__ import annotations

import gettext
import importlib.machinery
import importlib.util
import os
import string
import subprocess
import sys
import warnings
from pathlib import Path
from types import ModuleType

import pytest

from conftest import naskahd_cmd, require_tool, write_config

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "update-catalogs"
LOCALE = ROOT / "daemon" / "naskahd" / "locale"
FIX = "run scripts/update-catalogs, then fill in the msgstr in daemon/naskahd/locale/id/LC_MESSAGES/naskahd.po"


def _load_script() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("update_catalogs", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module  # dataclasses look their module up
    loader.exec_module(module)
    return module


uc = _load_script()


@pytest.fixture(scope="module")
def extracted() -> tuple[list, list]:
    return uc.extract()


@pytest.fixture(scope="module")
def messages(extracted: tuple[list, list]) -> list:
    assert extracted[0], "the extraction found no strings at all"
    return extracted[0]


def po_path(lang: str) -> Path:
    return LOCALE / lang / "LC_MESSAGES" / "naskahd.po"


def live(entries: list) -> list:
    return [e for e in entries if e.msgid != ""]


# -- (a) every string is translated --------------------------------------------------------------
def test_every_translate_call_can_be_extracted(extracted: tuple[list, list]) -> None:
    problems = extracted[1]
    assert not problems, (
        "these _() calls cannot be extracted for translation: write the string literal inside _() "
        "(\"...{name}...\".format() after it), or in a literal table:\n  " + "\n  ".join(map(str, problems))
    )


def test_every_string_has_an_indonesian_translation(messages: list) -> None:
    problems = uc.catalog_problems("id", uc.read_po(po_path("id")), messages)
    assert not problems, f"{len(problems)} string(s) lack an Indonesian translation ({FIX}):\n  " + "\n  ".join(problems)


def test_catalogs_hold_every_string_of_the_code(messages: list) -> None:
    """The template and both catalogs were regenerated after the last string change.
    Entries the code no longer uses are harmless (msgmerge makes them obsolete on the next
    run of the script): they only produce a warning."""
    wanted = {(m.msgid, m.msgid_plural) for m in messages}
    for path in (uc.POT, po_path("id"), po_path("en")):
        have = {(e.msgid, e.msgid_plural) for e in live(uc.read_po(path))}
        missing = sorted(wanted - have, key=str)
        assert not missing, (
            f"{path.relative_to(ROOT)} is out of date with the code: run scripts/update-catalogs\n"
            f"  not in the catalog yet: {missing}"
        )
        stale = sorted(have - wanted, key=str)
        if stale:
            warnings.warn(f"{path.relative_to(ROOT)}: entries no longer in the code (run scripts/update-catalogs): {stale}",
                          stacklevel=1)


def test_catalog_headers() -> None:
    for lang, plural in (("id", "nplurals=1; plural=0;"), ("en", "nplurals=2; plural=(n != 1);")):
        header = uc.po_header(uc.read_po(po_path(lang)))
        assert header.get("Language") == lang
        assert header.get("Content-Type") == "text/plain; charset=UTF-8"
        assert header.get("Plural-Forms") == plural


# -- (b) placeholders ---------------------------------------------------------------------------
def test_translations_keep_the_placeholders_of_their_msgid() -> None:
    bad = []
    for lang in uc.LANGUAGES:
        for e in live(uc.read_po(po_path(lang))):
            try:
                want_singular = uc.placeholders(e.msgid)
                want_plural = uc.placeholders(e.msgid_plural) if e.msgid_plural is not None else want_singular
            except ValueError:
                continue  # not a str.format template (a lone brace): nothing to keep
            for index, text in e.msgstr.items():
                if not text:
                    continue
                try:
                    have = uc.placeholders(text)
                except ValueError as exc:
                    bad.append(f"{lang}: {e.msgid!r}: the translation is not a valid format string ({exc}): {text!r}")
                    continue
                if e.msgid_plural is None:
                    ok = have == want_singular
                else:  # a plural form may drop {n} as the singular does: keep the shared fields, add none
                    ok = want_singular & want_plural <= have <= want_singular | want_plural
                if not ok:
                    bad.append(f"{lang}: {e.msgid!r} has {sorted(want_singular | want_plural)}, "
                               f"msgstr[{index}] has {sorted(have)}: {text!r}")
    assert not bad, "placeholders differ between msgid and msgstr:\n  " + "\n  ".join(bad)


def test_format_templates_are_flagged_for_msgfmt(messages: list) -> None:
    """``#, python-brace-format`` makes msgfmt --check reject a translation with other fields."""
    for lang in uc.LANGUAGES:
        entries = {e.msgid: e for e in live(uc.read_po(po_path(lang)))}
        unflagged = [m.msgid for m in messages
                     if m.flags and m.msgid in entries and "python-brace-format" not in entries[m.msgid].flags]
        assert not unflagged, f"{lang}: templates without #, python-brace-format (run scripts/update-catalogs): {unflagged}"


def test_message_templates_render_in_indonesian() -> None:
    """Every translated template formats with its msgid's keyword arguments."""
    with open(LOCALE / "id" / "LC_MESSAGES" / "naskahd.mo", "rb") as f:
        catalog = gettext.GNUTranslations(f)
    for e in live(uc.read_po(po_path("id"))):
        if e.msgid_plural is not None or "python-brace-format" not in e.flags:
            continue
        values: dict[str, object] = {}
        for _text, name, spec, _conversion in string.Formatter().parse(e.msgid):
            if name is not None:
                values[name] = 1.5 if spec and spec[-1] in "eEfFgG%" else 1 if spec and spec[-1] in "bcdoxXn" else "X"
        e.msgid.format(**values)
        catalog.gettext(e.msgid).format(**values)


# -- (c) the committed .mo files are compiled from the committed .po files ----------------------
@pytest.mark.parametrize("lang", uc.LANGUAGES)
def test_mo_is_compiled_from_po(lang: str, tmp_path: Path) -> None:
    msgfmt = require_tool("msgfmt")
    po, mo = po_path(lang), po_path(lang).with_suffix(".mo")
    fresh = tmp_path / "naskahd.mo"
    proc = subprocess.run([msgfmt, "--check", "-o", str(fresh), str(po)], capture_output=True, text=True)
    assert proc.returncode == 0, f"msgfmt --check rejects {po.relative_to(ROOT)}:\n{proc.stderr}"
    assert mo.exists(), f"{mo.relative_to(ROOT)} is missing: run scripts/update-catalogs and commit it"
    with open(fresh, "rb") as f:
        want = gettext.GNUTranslations(f)
    with open(mo, "rb") as f:
        have = gettext.GNUTranslations(f)
    assert have._catalog == want._catalog, (  # type: ignore[attr-defined]
        f"{mo.relative_to(ROOT)} is not compiled from the current {po.name}: run scripts/update-catalogs and commit the .mo"
    )
    assert have.plural(1) == want.plural(1) and have.plural(2) == want.plural(2)
    assert have.info() == want.info()


def test_xgettext_finds_nothing_the_extraction_misses(extracted: tuple[list, list], tmp_path: Path) -> None:
    """A cross-check of the AST pass: whatever xgettext sees in _()/ngettext() calls is extracted
    (apart from the calls the AST pass reports as unextractable, and the pieces of a
    ``"a" + "b"`` concatenation, where xgettext takes only the first)."""
    messages, problems = extracted
    xgettext = require_tool("xgettext")
    out = tmp_path / "xgettext.pot"
    files = [str(p) for p in uc.package_modules()]
    subprocess.run(
        [xgettext, "--language=Python", "--from-code=UTF-8", "--force-po", "--no-location",
         "-k", "-k_", "-kgettext", "-kN_", "-kngettext:1,2", "-o", str(out), *files],
        check=True, capture_output=True, text=True,
    )
    ours = {m.msgid for m in messages} | {m.msgid_plural for m in messages if m.msgid_plural}
    theirs = {e.msgid for e in live(uc.read_po(out))} | {e.msgid_plural for e in live(uc.read_po(out)) if e.msgid_plural}
    missed = [t for t in theirs - ours
              if not any(t in o for o in ours) and not any(t in p.code for p in problems)]
    assert not missed, f"xgettext found strings the extraction missed: {missed}"


# -- the extraction rules themselves ------------------------------------------------------------
def test_extraction_rules(tmp_path: Path) -> None:
    package = tmp_path / "naskahd"
    package.mkdir()
    (package / "errors.py").write_text(
        'from naskahd.i18n import _\n'
        'class NaskahdError(Exception):\n'
        '    message = "{detail}"\n'
        '    def render(self):\n'
        '        return _(self.message)\n'
        'class Other:\n'
        '    message = "not an error template"\n',
        encoding="utf-8",
    )
    (package / "mod.py").write_text(
        'from naskahd import i18n\n'
        'from naskahd.errors import NaskahdError\n'
        'from naskahd.i18n import _, ngettext\n'
        'TABLE = [(1, "from a table"), (2, "another " "row")]\n'
        'class Busy(NaskahdError):\n'
        '    message = "busy {pid!r}"\n'
        'class Busier(Busy):\n'
        '    message: str = "busier {seconds:g}"\n'
        'def f(param, obj):\n'
        '    # Translators: a note\n'
        '    # for the translator.\n'
        '    _("plain {n}")\n'
        '    ngettext("one file", "{n} files", 2)\n'
        '    i18n._("through the module")\n'
        '    for _number, why in TABLE:\n'
        '        _(why)\n'
        '    text = "one way" if param else "other way"\n'
        '    _(text)\n'
        '    _(f"formatted {param}")\n'
        '    _(param)\n'
        '    _(obj.attribute)\n',
        encoding="utf-8",
    )
    messages, problems = uc.extract(package)
    found = {m.msgid: m for m in messages}
    assert set(found) == {
        "{detail}", "busy {pid!r}", "busier {seconds:g}", "from a table", "another row",
        "plain {n}", "one file", "through the module", "one way", "other way",
    }
    assert found["one file"].msgid_plural == "{n} files"
    assert found["busier {seconds:g}"].flags == ["python-brace-format"]
    assert found["from a table"].flags == []
    assert found["from a table"].references == ["naskahd/mod.py:4"]
    assert found["plain {n}"].comments == ["Translators: a note for the translator."]
    assert sorted(p.code for p in problems) == ['_(f"formatted {param}")', "_(obj.attribute)", "_(param)"]


def test_po_reader_round_trip(tmp_path: Path) -> None:
    text = 'tab\there, "quoted", back\\slash, new\nline'
    po = tmp_path / "x.po"
    po.write_text(
        'msgid ""\nmsgstr "Language: id\\n"\n\n'
        f'#, fuzzy, python-brace-format\nmsgid {uc.po_quote(text)}\nmsgstr ""\n"part one "\n"part two"\n\n'
        '#~ msgid "obsolete"\n#~ msgstr "usang"\n',
        encoding="utf-8",
    )
    entries = uc.read_po(po)
    assert uc.po_header(entries) == {"Language": "id"}
    (e,) = live(entries)
    assert e.msgid == text and e.msgstr == {0: "part one part two"}
    assert e.fuzzy and not e.translated


# -- (d) the real CLI -----------------------------------------------------------------------------
def cli(*args: str, lang_env: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG", "NASKAHD_CONFIG")}
    if lang_env is not None:
        env["LANG"] = lang_env
    return subprocess.run(naskahd_cmd(*args), capture_output=True, text=True, env=env, timeout=120)


def test_cli_missing_config_file_in_indonesian_by_lang_option(tmp_path: Path) -> None:
    proc = cli("--lang", "id", "--config", str(tmp_path / "missing.toml"), "status")
    assert proc.returncode == 78, proc.stderr
    assert "kesalahan konfigurasi" in proc.stderr and "berkas tidak ada" in proc.stderr, proc.stderr
    assert "configuration error" not in proc.stderr


def test_cli_missing_config_file_in_indonesian_by_locale() -> None:
    proc = cli("--config", "/nonexistent", "status", lang_env="id_ID.UTF-8")
    assert proc.returncode == 78, proc.stderr
    assert "naskahd: kesalahan konfigurasi di /nonexistent" in proc.stderr, proc.stderr
    assert "berkas tidak ada; jalankan 'naskahd init --root DIR'" in proc.stderr


def test_cli_missing_config_file_in_english(tmp_path: Path) -> None:
    proc = cli("--lang", "en", "--config", str(tmp_path / "missing.toml"), "status", lang_env="id_ID.UTF-8")
    assert proc.returncode == 78, proc.stderr
    assert "configuration error in" in proc.stderr and "the file does not exist" in proc.stderr, proc.stderr
    assert "kesalahan" not in proc.stderr


def test_cli_status_with_a_missing_register(tmp_path: Path) -> None:
    """A valid configuration whose register file does not exist yet: the whole report."""
    config = write_config(tmp_path / "root")
    proc = cli("--lang", "id", "--config", str(config), "status")
    assert proc.returncode == 3, proc.stderr
    for text in ("naskahd TIDAK berjalan", "Naskah: surat masuk 0, surat keluar 0, dikecualikan 0",
                 "Menunggu di folder pindaian: 0", "Perlu perhatian:", "daftar kontrol (register)", "belum ada"):
        assert text in proc.stdout, proc.stdout
    english = cli("--lang", "en", "--config", str(config), "status", lang_env="id_ID.UTF-8")
    assert english.returncode == 3, english.stderr
    for text in ("naskahd is NOT running", "Documents: inbound 0, outbound 0, exempt 0", "Needs attention:",
                 "does not exist yet"):
        assert text in english.stdout, english.stdout


def test_cli_help_in_indonesian() -> None:
    proc = cli("--lang", "id", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "bahasa pesan: id atau en" in proc.stdout and "naskah dinas" in proc.stdout, proc.stdout
