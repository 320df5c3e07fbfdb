import os

from naskahd.naming import NAME_MAX, archive_name, display_name, numbered


def test_ordinary_names_keep_the_original_after_the_agenda_number() -> None:
    assert archive_name("0001-M-2026", b"surat undangan.pdf", exempt=False) == "0001-M-2026_surat undangan.pdf"


def test_exempt_names_show_only_the_agenda_number() -> None:
    assert archive_name("0007-D-2026", b"Rahasia: rencana.PDF", exempt=True) == "0007-D-2026.pdf.age"
    assert archive_name("0007-D-2026", b"no-extension", exempt=True) == "0007-D-2026.age"
    assert archive_name("0007-D-2026", b"x.weird extension", exempt=True) == "0007-D-2026.age"


def test_control_characters_and_bad_bytes_are_replaced_in_archive_names_only() -> None:
    assert archive_name("0001-M-2026", b"a\nb\xff.pdf", exempt=False) == "0001-M-2026_a_b_.pdf"
    assert display_name(b"a\nb\xff.pdf") == "a\nb\\xff.pdf"


def test_long_names_are_cut_to_255_bytes_keeping_the_extension_and_whole_characters() -> None:
    for raw in (b"L" * 251 + b".pdf", "é".encode() * 127 + b".pdf", "印".encode() * 80 + b".tiff"):
        name = archive_name("0001-M-2026", raw, exempt=False)
        assert len(name.encode()) <= NAME_MAX
        assert name.endswith((".pdf", ".tiff"))
        name.encode("utf-8")  # whole characters only


def test_numbered_variants() -> None:
    assert numbered("scan.pdf", 2) == "scan (2).pdf"
    assert numbered("README", 3) == "README (3)"
    long = os.fsdecode(b"\xff" * 250 + b".pdf")
    assert len(os.fsencode(numbered(long, 12))) <= NAME_MAX


def test_scrub_withholds_exempt_names_in_error_texts() -> None:
    from naskahd.naming import WITHHELD, scrub

    folders = (".naskahd-hold/dikecualikan", "tinjau/dikecualikan", "dikecualikan")
    text = ("[Errno 28] No space left on device: '/srv/drop/dikecualikan/sub/Rahasia Nama.pdf'; "
            "also dikecualikan/Lain.pdf and '/srv/drop/.naskahd-hold/dikecualikan/X y.pdf' "
            "but not '/srv/drop/masuk/biasa.pdf'")
    out = scrub(text, "/srv/drop", folders)
    assert "Rahasia" not in out and "Lain" not in out and "X y" not in out
    assert f"'/srv/drop/dikecualikan/{WITHHELD}'" in out
    assert f"/srv/drop/.naskahd-hold/dikecualikan/{WITHHELD}" in out
    assert "/srv/drop/masuk/biasa.pdf" in out
