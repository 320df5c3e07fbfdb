"""Translations: every user-facing string has an Indonesian translation, its placeholders
are those of the English msgid, the committed .mo files are compiled from the committed .po
files, every message a command shows a person is in the catalog, and the real CLI speaks
Indonesian when asked to.

The strings are extracted by Babel exactly as ``scripts/update-catalogs`` (``make
catalogs``) does: literals in ``_()``, ``gettext()``, ``N_()``, ``ngettext()``. When a test
here fails after a code change: run ``make catalogs``, fill in the empty or fuzzy msgstr in
``daemon/naskahd/locale/id/LC_MESSAGES/naskahd.po``, run it again, commit.
"""

from __future__ import annotations

import ast
import gettext
import importlib.machinery
import importlib.util
import os
import re
import string
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

from conftest import naskahd_cmd, require_tool, write_config

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "update-catalogs"
LOCALE = ROOT / "daemon" / "naskahd" / "locale"
PACKAGE = ROOT / "daemon" / "naskahd"
FIX = "run make catalogs, then fill in the msgstr in daemon/naskahd/locale/id/LC_MESSAGES/naskahd.po"


def _load_script() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("update_catalogs", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module
    loader.exec_module(module)
    return module


uc = _load_script()


def po_path(lang: str) -> Path:
    return LOCALE / lang / "LC_MESSAGES" / "naskahd.po"


def load(path: Path) -> Catalog:
    with open(path, "rb") as f:
        return read_po(f)


def live(catalog: Catalog) -> list[Message]:
    return [m for m in catalog if m.id]


def ids(m: Message) -> tuple[str, ...]:
    return m.id if isinstance(m.id, tuple) else (m.id,)


def strings(m: Message) -> tuple[str, ...]:
    return m.string if isinstance(m.string, tuple) else (m.string,)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The strings of the code, extracted now, as make catalogs does."""
    pot = tmp_path_factory.mktemp("pot") / "naskahd.pot"
    uc.extract(pot)
    catalog = load(pot)
    assert len(live(catalog)) > 100, "the extraction found (almost) no strings"
    return catalog


# -- (a) every string is extracted and translated --------------------------------------------------
KEYWORDS = {"_", "gettext", "N_", "ngettext"}
# _(x) with x not a literal: allowed only where x holds N_-marked literals (the run-time
# check below catches a miss). The code of each such argument, per module.
DYNAMIC = {
    "errors.py": {"self.message", "self.file_message", "self.key_message"},
    "service.py": {"why"},
    "i18n.py": {"message", "singular"},
    "reasons.py": {"template"},
    "oserrors.py": {"what", "todo"},
    "status_cmd.py": {"naming.WITHHELD"},
    "review_cmd.py": {"naming.WITHHELD"},
    "duplicates_cmd.py": {"naming.WITHHELD"},
    "app.py": {"message"},  # web/app.py: the N_-marked error pages
}


def test_every_translate_call_can_be_extracted() -> None:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in KEYWORDS):
                continue
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                continue
            code = ast.unparse(arg) if arg is not None else ""
            if code not in DYNAMIC.get(path.name, set()):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert not bad, (
        "these calls cannot be extracted for translation: write the string literal inside _() "
        "(\"...{name}...\".format() after it), or mark it with N_() where it is defined:\n  " + "\n  ".join(bad)
    )


def test_every_string_has_an_indonesian_translation(template: Catalog) -> None:
    have = {m.id: m for m in live(load(po_path("id")))}
    problems = []
    for m in live(template):
        t = have.get(m.id)
        if t is None:
            problems.append(f"not in the catalog: {m.id!r}")
        elif t.fuzzy or not all(strings(t)):
            problems.append(f"{'fuzzy' if t.fuzzy else 'untranslated'}: {m.id!r}")
    assert not problems, f"{len(problems)} string(s) lack an Indonesian translation ({FIX}):\n  " + "\n  ".join(problems)


def test_catalogs_hold_every_string_of_the_code(template: Catalog) -> None:
    wanted = {m.id for m in live(template)}
    for path in (uc.POT, po_path("id"), po_path("en")):
        have = {m.id for m in live(load(path))}
        missing = sorted(wanted - have, key=str)
        assert not missing, f"{path.relative_to(ROOT)} is out of date with the code ({FIX}):\n  {missing}"


def test_catalog_headers() -> None:
    for lang, plural in (("id", "nplurals=1; plural=0;"), ("en", "nplurals=2; plural=(n != 1);")):
        catalog = load(po_path(lang))
        headers = dict(catalog.mime_headers)
        assert headers.get("Language") == lang
        assert headers.get("Content-Type", "").lower() == "text/plain; charset=utf-8"
        assert headers.get("Plural-Forms") == plural


# -- (b) placeholders ---------------------------------------------------------------------------
def placeholders(text: str) -> set[str]:
    """str.format fields, or %-style ones (argparse's msgids)."""
    if re.search(r"%(\(\w+\))?[sdrf]", text):
        return set(re.findall(r"%(?:\((\w+)\))?[sdrf]", text))
    return {f"{name}!{conv}:{spec}" for _t, name, spec, conv in string.Formatter().parse(text) if name is not None}


def test_translations_keep_the_placeholders_of_their_msgid() -> None:
    bad = []
    for lang in uc.LANGUAGES:
        for m in live(load(po_path(lang))):
            try:
                want = [placeholders(i) for i in ids(m)]
            except ValueError:
                continue
            for index, text in enumerate(strings(m)):
                if not text:
                    continue
                try:
                    have = placeholders(text)
                except ValueError as exc:
                    bad.append(f"{lang}: {m.id!r}: the translation is not a valid format string ({exc}): {text!r}")
                    continue
                shared, every = set.intersection(*want), set.union(*want)
                if not (shared <= have <= every):
                    bad.append(f"{lang}: {m.id!r} has {sorted(every)}, msgstr[{index}] has {sorted(have)}: {text!r}")
    assert not bad, "placeholders differ between msgid and msgstr:\n  " + "\n  ".join(bad)


def test_format_templates_are_flagged_for_msgfmt(template: Catalog) -> None:
    """``#, python-brace-format`` makes msgfmt --check reject a translation with other fields."""
    braced = {m.id for m in live(template) if "python-brace-format" in m.flags}
    assert "configuration error in {source}: {key} = {value}: {detail}" in braced
    for lang in uc.LANGUAGES:
        entries = {m.id: m for m in live(load(po_path(lang)))}
        unflagged = [i for i in braced if i in entries and "python-brace-format" not in entries[i].flags]
        assert not unflagged, f"{lang}: templates without #, python-brace-format ({FIX}): {unflagged}"


def test_message_templates_render_in_indonesian() -> None:
    """Every translated template formats with its msgid's keyword arguments."""
    with open(LOCALE / "id" / "LC_MESSAGES" / "naskahd.mo", "rb") as f:
        catalog = gettext.GNUTranslations(f)
    for m in live(load(po_path("id"))):
        if isinstance(m.id, tuple) or "python-brace-format" not in m.flags:
            continue
        values: dict[str, object] = {}
        for _text, name, spec, _conversion in string.Formatter().parse(m.id):
            if name is not None:
                values[name] = 1.5 if spec and spec[-1] in "eEfFgG%" else 1 if spec and spec[-1] in "bcdoxXn" else "X"
        m.id.format(**values)
        catalog.gettext(m.id).format(**values)


# -- (c) the committed .mo files are compiled from the committed .po files ----------------------
@pytest.mark.parametrize("lang", uc.LANGUAGES)
def test_mo_is_compiled_from_po(lang: str, tmp_path: Path) -> None:
    msgfmt = require_tool("msgfmt")
    po, mo = po_path(lang), po_path(lang).with_suffix(".mo")
    fresh = tmp_path / "naskahd.mo"
    proc = subprocess.run([msgfmt, "--check", "-o", str(fresh), str(po)], capture_output=True, text=True)
    assert proc.returncode == 0, f"msgfmt --check rejects {po.relative_to(ROOT)}:\n{proc.stderr}"
    assert mo.exists(), f"{mo.relative_to(ROOT)} is missing: run make catalogs and commit it"
    with open(fresh, "rb") as f:
        want = gettext.GNUTranslations(f)
    with open(mo, "rb") as f:
        have = gettext.GNUTranslations(f)
    assert have._catalog == want._catalog, (  # type: ignore[attr-defined]
        f"{mo.relative_to(ROOT)} is not compiled from the current {po.name}: run make catalogs and commit the .mo"
    )
    assert have.info() == want.info()


def test_xgettext_finds_nothing_babel_misses(template: Catalog, tmp_path: Path) -> None:
    """A cross-check of the extraction: whatever xgettext sees in these calls is extracted."""
    xgettext = require_tool("xgettext")
    out = tmp_path / "xgettext.pot"
    files = [str(p) for p in sorted(PACKAGE.rglob("*.py"))]
    subprocess.run(
        [xgettext, "--language=Python", "--from-code=UTF-8", "--force-po", "--no-location",
         "-k", "-k_", "-kgettext", "-kN_", "-kngettext:1,2", "-o", str(out), *files],
        check=True, capture_output=True, text=True,
    )
    # xgettext's header is a template (charset=CHARSET, nplurals=INTEGER): make it readable.
    out.write_text(out.read_text(encoding="utf-8").replace("charset=CHARSET", "charset=UTF-8")
                   .replace("nplurals=INTEGER; plural=EXPRESSION;", "nplurals=2; plural=(n != 1);"), encoding="utf-8")
    ours = {i for m in live(template) for i in ids(m)}
    theirs = {i for m in live(load(out)) for i in ids(m)}
    missed = [t for t in theirs - ours if not any(t in o for o in ours)]
    assert not missed, f"xgettext found strings the extraction missed: {missed}"


def test_argparse_speaks_indonesian() -> None:
    from naskahd import i18n

    try:
        i18n.setup("id")
        import argparse

        parser = argparse.ArgumentParser(prog="x")
        parser.add_argument("--n", type=int, required=True)
        help_text = parser.format_help()
        assert "penggunaan:" in help_text and "pilihan" in help_text and "tampilkan bantuan" in help_text, help_text
        assert "usage:" not in help_text and "show this help" not in help_text
    finally:
        i18n.setup("en")


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
