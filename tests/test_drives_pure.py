"""Pure parts of the backup to drives: the identity token, name mapping, planning."""

from __future__ import annotations

import json

from naskahd.drives import names, plan, token

SECRET = b"s" * 32
OTHER = b"o" * 32
UUID = "0a1b2c3d-1111-2222-3333-444455556666"


def test_a_token_verifies_only_for_its_host_drive_id_and_uuid() -> None:
    drive_id = token.new_drive_id()
    data = token.render(SECRET, drive_id, UUID)
    assert token.problem(SECRET, data, drive_id=drive_id, uuid=UUID) is None
    assert token.problem(SECRET, data, drive_id=drive_id, uuid=UUID.upper()) is None  # blkid case
    assert "secret" in token.problem(OTHER, data, drive_id=drive_id, uuid=UUID)  # another host's
    assert token.problem(SECRET, data, drive_id=drive_id, uuid="ffff-0000") is not None  # copied onto a look-alike
    assert "another drive" in token.problem(SECRET, data, drive_id=token.new_drive_id(), uuid=UUID)
    assert "no naskahd identity token" in token.problem(SECRET, None, drive_id=drive_id, uuid=UUID)
    assert "damaged" in token.problem(SECRET, b"{not json", drive_id=drive_id, uuid=UUID)
    forged = json.loads(data)
    forged["hmac"] = "0" * 64
    assert token.problem(SECRET, json.dumps(forged).encode(), drive_id=drive_id, uuid=UUID) is not None
    assert token.new_drive_id() != token.new_drive_id()


def test_forbidden_characters_trailing_dots_and_device_names_are_mapped() -> None:
    assert names.component('a<b>c:d"e|f?g*h\\i.pdf') == "a_b_c_d_e_f_g_h_i.pdf"
    assert names.component("tab\there\x01.pdf") == "tab_here_.pdf"
    assert names.component("ends with dots..") == "ends with dots__"
    assert names.component("ends with space ") == "ends with space_"
    assert names.component("CON") == "_CON"
    assert names.component("nul.txt") == "_nul.txt"
    assert names.component("console.txt") == "console.txt"
    assert names.component("") == "_"
    assert names.component("plain name (1).pdf") == "plain name (1).pdf"


def test_names_fit_255_utf16_units_and_keep_their_extension() -> None:
    long = "\U0001F600" * 200 + ".pdf"  # each emoji is two UTF-16 units
    out = names.component(long)
    assert names.units(out) <= 255 and out.endswith(".pdf")
    assert "\ud83d" not in out  # never half a surrogate pair
    assert names.units(names.component("x" * 300)) == 255


def test_case_clashes_are_resolved_deterministically_in_register_order() -> None:
    taken: set[str] = set()
    a = names.drive_path("inbound/2026/12/Surat.pdf", taken)
    b = names.drive_path("inbound/2026/12/surat.pdf", taken)
    c = names.drive_path("inbound/2026/12/SURAT.PDF", taken)
    assert (a, b, c) == ("inbound/2026/12/Surat.pdf", "inbound/2026/12/surat (2).pdf", "inbound/2026/12/SURAT (3).PDF")
    again: set[str] = set()
    assert [names.drive_path(p, again) for p in ("inbound/2026/12/Surat.pdf", "inbound/2026/12/surat.pdf")] == [a, b]
    # other folders do not clash
    assert names.drive_path("outbound/2026/12/surat.pdf", taken) == "outbound/2026/12/surat.pdf"


def _w(i: int, path: str, size: int = 10) -> plan.Wanted:
    return plan.Wanted(i, f"{i:04d}/M/2026", "inbound", path, size, "0" * 64)


def test_assign_is_in_register_order_and_respects_names_already_on_the_drive() -> None:
    taken = names.folded(["inbound/2026/12/Surat.pdf"])  # copied by an earlier sync
    p = plan.assign([_w(3, "inbound/2026/12/surat.pdf"), _w(2, "inbound/2026/12/a:b.pdf")], taken, fstype="exfat")
    assert [(i.wanted.document_id, i.drive_path) for i in p.items] == [
        (2, "inbound/2026/12/a_b.pdf"), (3, "inbound/2026/12/surat (2).pdf")]
    assert p.files == 2 and p.bytes == 20 and p.too_big == ()


def test_a_file_over_4_gib_is_set_aside_on_fat32_only() -> None:
    big = _w(1, "inbound/2026/12/big.tif", size=5 * 1024**3)
    assert plan.assign([big, _w(2, "inbound/2026/12/s.pdf")], set(), fstype="vfat").too_big == (big,)
    assert plan.assign([big], set(), fstype="exfat").too_big == ()


def test_a_read_error_of_the_archive_file_is_the_archives_not_the_drives(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """EIO while reading the archive copy (a bad sector on the host) must not read as "the
    drive went away" (copy.GONE): it is the archive file's, named as such."""
    import os

    import pytest

    from naskahd.drives import copy

    fd = os.open(tmp_path, os.O_RDONLY)  # reading a folder fails (EISDIR), as a bad sector would (EIO)
    try:
        with pytest.raises(copy._SourceBad, match="archive file cannot be read"):
            copy._read_source(fd)
    finally:
        os.close(fd)


def test_batches_start_small_and_grow_to_their_limits() -> None:
    """The first batches are small (the pipeline's threads get work early; a small sync is
    not one batch that nothing overlaps), then twice as large each time up to BATCH_FILES,
    and never over BATCH_BYTES unless a single file is larger."""
    from naskahd.drives import sync

    items = [plan.Item(_w(i, f"inbound/2026/12/{i}.pdf", size=1000), f"naskah/{i}") for i in range(1, 5001)]
    sizes = [len(b) for b in sync._batches(items)]
    assert sizes[:4] == [sync.FIRST_BATCH_FILES, 2 * sync.FIRST_BATCH_FILES, 4 * sync.FIRST_BATCH_FILES, 8 * sync.FIRST_BATCH_FILES]
    assert max(sizes) == sync.BATCH_FILES and sum(sizes) == 5000
    big = [plan.Item(_w(i, f"inbound/2026/12/{i}.tif", size=sync.BATCH_BYTES // 3 + 1), f"naskah/{i}") for i in range(1, 8)]
    assert [len(b) for b in sync._batches(big, first=1000)] == [3, 3, 1]
    huge = [plan.Item(_w(1, "inbound/2026/12/1.tif", size=2 * sync.BATCH_BYTES), "naskah/1")]
    assert [len(b) for b in sync._batches(huge)] == [1]


def test_the_fast_path_for_plain_ascii_names_maps_as_the_full_rules_do() -> None:
    """``names.component`` returns a plain ASCII name as it is without the full rules; it
    must be exactly what the full rules give (device names, trailing dots, length...)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    edge = ["CON", "con.txt", "Con.tar.gz", "COM1", "lpt9.x", ".hidden", "a.", "a ", "x" * 255, "x" * 256,
            "x" * 300 + ".pdf", ".", "..", "NUL.", "nul .txt", "aux.", "ok.pdf", "a:b", "tab\there", "surat 01.PDF"]
    for name in edge:
        assert names.component(name) == names._component(name), name

    @settings(max_examples=2000, deadline=None)
    @given(st.text(alphabet=st.characters(max_codepoint=127), min_size=1, max_size=300))
    def same(name: str) -> None:
        assert names.component(name) == names._component(name)
        assert names.fold(name) == name.casefold()

    same()
