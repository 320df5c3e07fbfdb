"""Reasons are stored as codes with parameters and rendered in the reader's language."""

from __future__ import annotations

import errno
import json

import pytest

from naskahd import i18n, reasons


@pytest.fixture
def lang():
    yield i18n.setup
    i18n.setup("en")


def test_a_code_renders_in_each_language(lang) -> None:
    stored = reasons.encode("still_incomplete", seconds=600.0, reason=reasons.nested(reasons.encode("empty")))
    assert json.loads(stored)["code"] == "still_incomplete"
    assert reasons.code_of(stored) == "still_incomplete"
    lang("en")
    assert reasons.render(stored) == "still incomplete after 600 s: the file is empty (0 bytes): scan the letter again"
    lang("id")
    shown = reasons.render(stored)
    assert "600" in shown and "berkas kosong" in shown and "still" not in shown, shown


def test_an_os_error_names_the_path_the_user_and_the_fix(lang) -> None:
    exc = PermissionError(errno.EACCES, "Permission denied", "/srv/naskahd/archive/inbound")
    stored = reasons.encode("cannot_write_archive", error=reasons.os_error(exc))
    lang("en")
    text = reasons.render(stored)
    assert "/srv/naskahd/archive/inbound" in text and "permission denied for the user" in text and "chmod" in text
    lang("id")
    text = reasons.render(stored)
    assert "izin ditolak untuk pengguna" in text and "Permission denied" not in text
    ro = OSError(errno.EROFS, "Read-only file system", "/srv/naskahd/archive")
    assert "hanya-baca" in reasons.render(reasons.encode("cannot_write_archive", error=reasons.os_error(ro)))


def test_plain_text_from_before_codes_is_shown_as_it_is(lang) -> None:
    lang("id")
    assert reasons.render("some old reason") == "some old reason"
    assert reasons.code_of("some old reason") is None
    # an old English msgid is translated
    assert reasons.render("a program or a scanner still has it open for writing") != \
        "a program or a scanner still has it open for writing"
