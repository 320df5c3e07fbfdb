"""Property-based tests (hypothesis) of the pure decisions hostile input reaches: the rule
matcher, agenda numbering, archive and drive names, and the completeness checks.

Settings come from the profile chosen in tests/conftest.py: derandomized with a fixed number
of examples under CI=true (a failure replays; the run stays short on 2 cores), random
locally; no per-example deadline (the cores are shared and busy).
"""

from __future__ import annotations

import io
import os
import re

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from naskahd import naming
from naskahd.categories import CATEGORIES, DROP_FOLDER, EXEMPT, LETTER
from naskahd.classify import classify, is_ignored
from naskahd.config import Rule, _default_rules
from naskahd.drives import names
from naskahd.register.numbering import agenda_stem, allocate_numbers, format_agenda

# -- strategies -----------------------------------------------------------------------------------
# A path component as the OS hands it to the daemon: any bytes but '/' and NUL, decoded with
# surrogateescape (os.fsdecode), 1..255 bytes.
raw_component = st.binary(min_size=1, max_size=255).map(lambda b: b.replace(b"/", b"_").replace(b"\x00", b"_")).filter(
    lambda b: b not in (b".", b".."))
component = raw_component.map(os.fsdecode)
nice_component = st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)), min_size=1, max_size=40).filter(
    lambda s: s not in (".", ".."))
any_component = st.one_of(component, nice_component, st.sampled_from(["masuk", "MASUK", "Keluar", "dikecualikan", "DiKeCuaLiKaN", "tinjau", "duplikat", ".naskahd-hold"]))
relpath = st.lists(any_component, min_size=1, max_size=6).map("/".join)

globs = st.sampled_from(["masuk/*", "keluar/*", "dikecualikan/*", "*", "*/*.pdf", "[mk]*/*", "*?*", "**", "masuk/[!x]*", "*[", "a/*/b/*"])
regexes = st.sampled_from([None, r"(?i)rahasia", r"^SK-", r"\.pdf$", r".", r"[\ud800-\udfff]", r"\n"])
rules_strategy = st.lists(
    st.builds(lambda c, p, n: Rule(category=c, path=p, name=None if n is None else re.compile(n)),
              st.sampled_from(CATEGORIES), st.one_of(st.none(), globs), regexes),
    max_size=6,
).map(tuple)


# -- the rule matcher (classify.py, categories.py) ----------------------------------------------------
@given(relpath, rules_strategy)
def test_classify_never_raises_and_answers_a_rules_category_or_none(rel: str, rules: tuple[Rule, ...]) -> None:
    got = classify(rel, rules)
    assert got is None or got in {r.category for r in rules}
    if got is not None:  # first match wins: the answer is the first rule that matches alone
        first = next(r for r in rules if classify(rel, (r,)) is not None)
        assert first.category == got


@given(relpath)
def test_the_default_rules_follow_the_first_folder_whatever_its_case(rel: str) -> None:
    rules = _default_rules()
    top, _, rest = rel.partition("/")
    want = {folder: category for category, folder in DROP_FOLDER.items()}
    got = classify(rel, rules)
    if rest and top.casefold() in want:
        assert got == want[top.casefold()]
    else:  # a file at the drop folder's top, or under any other folder, matches no rule
        assert got is None
    if rel.upper().casefold() == rel.casefold():
        assert classify(rel.upper(), rules) == got


@given(relpath, st.lists(st.sampled_from(["*.tmp", "*.part", "~$*", ".~lock.*", "Thumbs.db", "._*", "@eaDir", "[", "*"]), max_size=5))
def test_ignore_globs_match_a_component_exactly_as_fnmatch_does(rel: str, patterns: list[str]) -> None:
    import fnmatch

    want = any(fnmatch.fnmatchcase(part, p) for part in rel.split("/") if part not in ("", ".") for p in patterns)
    assert is_ignored(rel, patterns) == want


# -- agenda numbering (register/numbering.py) ------------------------------------------------------
@pytest.fixture(scope="module")
def register(tmp_path_factory: pytest.TempPathFactory):
    from naskahd.register import open_register

    return open_register(f"sqlite:///{tmp_path_factory.mktemp('reg') / 'r.sqlite3'}")


_runs = iter(range(10**9))

operations = st.lists(
    st.tuples(st.sampled_from(CATEGORIES), st.integers(0, 2), st.integers(1, 70), st.booleans()),
    min_size=1, max_size=25,
)


@settings(max_examples=60)
@given(operations)
def test_numbers_are_gapless_per_category_and_year_through_commits_and_rollbacks(register, ops) -> None:
    base_year = 3000 + 3 * next(_runs)  # each example has years of its own in the one register
    committed: dict[tuple[str, int], list[int]] = {}
    for category, dy, count, commit in ops:
        year = base_year + dy
        session = register()
        try:
            got = list(allocate_numbers(session, category, year, count))
            assert len(got) == count and got == list(range(got[0], got[0] + count))
            if commit:
                session.commit()
                committed.setdefault((category, year), []).extend(got)
            else:
                session.rollback()  # a crash before the commit: as if never allocated
        finally:
            session.close()
    for key, numbers in committed.items():
        assert numbers == list(range(1, len(numbers) + 1)), key


@given(st.integers(1, 10**7), st.sampled_from(CATEGORIES), st.integers(1, 9999))
def test_agenda_numbers_read_back_and_stems_are_file_names(number: int, category: str, year: int) -> None:
    agenda = format_agenda(number, category, year)
    n, letter, y = agenda.split("/")
    assert (int(n), letter, int(y)) == (number, LETTER[category], year) and len(n) >= 4
    stem = agenda_stem(number, category, year)
    assert "/" not in stem and stem.replace("-", "/") == agenda
    if number < 10_000:  # four digits: the archive's names sort in number order
        assert len(n) == 4


# -- archive names (naming.py) --------------------------------------------------------------------
@given(raw_component, st.integers(1, 10**6), st.sampled_from(CATEGORIES))
def test_archive_names_fit_one_component_and_exempt_ones_carry_nothing_of_the_name(raw: bytes, number: int, category: str) -> None:
    stem = agenda_stem(number, category, 2026)
    exempt = category == EXEMPT
    name = naming.archive_name(stem, raw, exempt=exempt)
    assert len(name.encode("utf-8")) <= naming.NAME_MAX
    assert name.startswith(stem) and "/" not in name and not re.search(r"[\x00-\x1f\x7f]", name)
    name.encode("utf-8")  # no surrogate escapes: the archive name is valid UTF-8
    if exempt:
        assert re.fullmatch(re.escape(stem) + r"(\.[a-z0-9]{1,5})?\.age", name), name
    assert naming.display_name(raw).encode("utf-8")  # shown names are always printable text
    for n in (2, 3, 100):
        assert len(os.fsencode(naming.numbered(name, n))) <= naming.NAME_MAX


# -- drive names (drives/names.py) ------------------------------------------------------------------
def _acceptable(leaf: str) -> bool:
    return (
        leaf != ""
        and not re.search(r'[<>:"/\\|?*\x00-\x1f\x7f\ud800-\udfff]', leaf)
        and not leaf.endswith((".", " "))
        and names.units(leaf) <= names.MAX_UNITS
        and leaf.split(".")[0].upper() not in names._RESERVED
    )


drive_text = st.one_of(
    component,
    st.text(min_size=1, max_size=300),
    st.builds(lambda a, b, c: a + b + c, st.text(max_size=260), st.sampled_from(["", " ", ".", ". ", " .", "..", "\U0001f600"]), st.text(max_size=20)),
    st.sampled_from(["CON", "con.txt", "Aux.pdf", "LPT1", "com9.tar.gz", "NUL ", "PRN.", "CONIN$"]),
)


@given(drive_text)
@example("a" * 254 + " " + "bbbbb")  # cut to 255 units right after a space
@example("a" * 254 + ".bbbbbbbbbbbbbbbbbbbbbbbbbbbbb")  # cut right after a dot, no extension
def test_a_drive_name_is_accepted_by_ntfs_exfat_and_fat(name: str) -> None:
    out = names.component(name)
    assert _acceptable(out), (name, out)
    assert names.component(out) == out  # a mapped name maps to itself


@given(st.lists(st.lists(drive_text, min_size=1, max_size=3).map("/".join), max_size=25))
def test_drive_paths_never_clash_case_insensitively(paths: list[str]) -> None:
    taken: set[str] = set()
    out = [names.drive_path(p, taken) for p in paths]
    assert len({names.fold(p) for p in out}) == len(out)
    for p in out:
        assert all(_acceptable(part) for part in p.split("/")), p


# -- the completeness checks (complete/) -------------------------------------------------------------
from naskahd.complete import PDF_WS, Completeness, check_fd  # noqa: E402

KNOWN = ("pdf", "jpeg", "png", "tiff")


def judge(data: bytes, size: int | None = None) -> Completeness:
    fd = os.memfd_create("scan")
    try:
        os.write(fd, data)
        got = check_fd(fd, len(data) if size is None else size)
    finally:
        os.close(fd)
    assert isinstance(got, Completeness) and isinstance(got.complete, bool)
    got.why.render(), got.why.english()  # every verdict's reason renders
    return got


@st.composite
def real_files(draw: st.DrawFn) -> tuple[str, bytes]:
    """A whole file of a known kind, its make-up chosen by hypothesis."""
    import pdfs

    kind = draw(st.sampled_from(["pdf-hand", "pdf-hand", "pdf-incremental", "pdf-pypdf", "jpeg", "png", "tiff"]))
    if kind.startswith("pdf-hand") or kind == "pdf-incremental":
        pages = draw(st.integers(1, 4))
        xref = draw(st.sampled_from(["table", "stream", "hybrid"]))
        objects = pdfs.page_tree(pages)
        compressed = tuple(draw(st.sets(st.sampled_from(sorted(objects)), max_size=3))) if xref != "table" else ()
        eol = draw(st.sampled_from([b" \n", b" \r", b"\r\n", b"\n"]))
        junk = draw(st.sampled_from([b"", b"\xef\xbb\xbf", b"garbage before the header\n"]))
        data = junk + pdfs.build(objects, xref=xref, compressed=compressed, eol=eol if xref == "table" else b" \n")
        if kind == "pdf-incremental":
            data = pdfs.build({1: b"<< /Type /Catalog /Pages 2 0 R /Lang (id) >>"}, base=data, xref=draw(st.sampled_from(["table", "stream"])))
        return "pdf", data + draw(st.sampled_from([b"", b"\n", b"\r\n\x00\x00"]))
    if kind == "pdf-pypdf":
        from pypdf import PdfWriter

        w = PdfWriter()
        for _ in range(draw(st.integers(1, 3))):
            w.add_blank_page(width=draw(st.integers(50, 900)), height=842)
        w.add_metadata({"/Title": draw(st.text(max_size=40))})
        buf = io.BytesIO()
        w.write(buf)
        return "pdf", buf.getvalue()
    from PIL import Image

    size = (draw(st.integers(1, 40)), draw(st.integers(1, 40)))
    mode = draw(st.sampled_from(["RGB", "L"]))
    pixels = draw(st.binary(min_size=size[0] * size[1] * len(mode), max_size=size[0] * size[1] * len(mode)))
    img = Image.frombytes(mode, size, pixels)
    buf = io.BytesIO()
    options = {"jpeg": lambda: {"quality": draw(st.integers(10, 95)), "progressive": draw(st.booleans())},
               "png": lambda: {"compress_level": draw(st.integers(0, 9))},
               "tiff": lambda: {"compression": draw(st.sampled_from(["raw", "tiff_deflate", "packbits"]))}}[kind]()
    img.save(buf, format=kind.upper(), **options)
    return kind, buf.getvalue()


def revision_ends(data: bytes) -> set[int]:
    """Lengths at which a PDF revision ends: an %%EOF followed only by white-space."""
    ends, at = set(), data.find(b"%%EOF")
    while at >= 0:
        end = at + 5
        ends.add(end)
        while end < len(data) and data[end] in PDF_WS:
            end += 1
            ends.add(end)
        at = data.find(b"%%EOF", at + 1)
    return ends


@settings(max_examples=80)
@given(real_files(), st.data())
def test_a_strict_prefix_of_a_whole_file_is_never_complete_but_an_earlier_revision(made: tuple[str, bytes], data: st.DataObject) -> None:
    kind, whole = made
    verdict = judge(whole)
    assert verdict.complete and verdict.kind == kind, verdict.reason
    end = len(whole.rstrip(PDF_WS)) if kind == "pdf" else len(whole)  # white-space after %%EOF may go
    assume(end > 1)
    cut = data.draw(st.one_of(st.integers(1, end - 1), st.integers(max(1, end - 40), end - 1)), label="cut")
    got = judge(whole[:cut])
    if got.complete and got.kind is None:  # the documented limit: junk before %PDF- alone is of no known kind
        assert kind == "pdf" and cut < whole.index(b"%PDF-") + 5, (kind, cut, got.reason)
    elif got.complete:
        assert kind == "pdf" and cut in revision_ends(whole), (kind, cut, len(whole), got.reason)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A whole file with bytes flipped, inserted, deleted, zeroed, or its parts swapped."""
    _, data = draw(real_files())
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        if not buf:
            break
        at = draw(st.integers(0, len(buf) - 1))
        op = draw(st.sampled_from(["flip", "insert", "delete", "zeros", "digits", "keyword", "dup"]))
        if op == "flip":
            buf[at] ^= draw(st.integers(1, 255))
        elif op == "insert":
            buf[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif op == "delete":
            del buf[at : at + draw(st.integers(1, 512))]
        elif op == "zeros":
            n = draw(st.integers(1, 4096))
            buf[at : at + n] = bytes(min(n, len(buf) - at))
        elif op == "digits":  # offsets and lengths are where a parser trusts numbers
            buf[at:at] = str(draw(st.integers(-(10**20), 10**20))).encode()
        elif op == "keyword":
            buf[at:at] = draw(st.sampled_from([b"startxref 0\n%%EOF", b" 0 R", b"<<", b">>", b"[", b"stream\n", b"endstream",
                                                b"xref\n0 99999999\n", b"/Prev 0", b"\xff\xd9", b"IEND", b"obj", b"(", b"\\"]))
        else:
            start = draw(st.integers(0, len(buf) - 1))
            buf[at:at] = buf[start : start + draw(st.integers(1, 2048))]
    return bytes(buf)


@settings(max_examples=150)
@given(st.one_of(mutated(), st.binary(max_size=4096),
                 st.builds(lambda m, b: m + b, st.sampled_from([b"%PDF-1.7\n", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*",
                                                                b"II+\x00", b"MM\x00+", b"\xef\xbb\xbf%PDF-"]), st.binary(max_size=2048))))
def test_random_and_mutated_bytes_never_crash_the_check(data: bytes) -> None:
    got = judge(data)
    assert got.kind in (None, *KNOWN)
    assert judge(data) == got  # the same bytes, the same verdict
    if len(data) > 1:  # a size smaller than the file (it shrank meanwhile) is no crash either
        judge(data, size=len(data) // 2)


@pytest.mark.parametrize("xref", ["table", "stream", "hybrid"])
def test_junk_before_the_header_with_offsets_counted_from_it_is_opened_as_readers_do(xref: str) -> None:
    """Found by the prefix property: a producer that puts junk before %PDF- and counts its
    offsets from the header; the startxref offset then lands in binary stream data (zero
    bytes), which is not a part still unwritten: the file is whole and pypdf opens it."""
    import pdfs

    data = b"garbage before the header\n" + pdfs.build(pdfs.page_tree(1), xref=xref)
    got = judge(data)
    assert got.complete and got.detected_type == "pdf-repaired", got.reason
    header_end = data.index(b"%PDF-") + 5  # before it, the junk alone is a file of no known kind
    assert not any(judge(data[:cut]).complete for cut in range(header_end, len(data.rstrip(PDF_WS)), 7))


# -- the age header parser and payload (naskahd.age) ------------------------------------------------------
from naskahd import age  # noqa: E402
from naskahd.errors import AgeError  # noqa: E402

_IDS = [age.generate_identity() for _ in range(3)]
_OTHER = age.generate_identity()


def open_age(data: bytes, identities=None) -> bytes | None:
    """Decrypt; None where age refuses (AgeError, its one documented failure)."""
    try:
        return age.decrypt_bytes(data, list(_IDS if identities is None else identities))
    except AgeError as exc:
        assert str(exc) and "Traceback" not in str(exc)
        return None


@st.composite
def sealed(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(plaintext, the age file), to 1-3 of the identities, sometimes ASCII-armored."""
    size = draw(st.sampled_from([0, 1, 100, 65535, 65536, 65537, 131072]))
    plain = draw(st.binary(min_size=min(size, 64), max_size=min(size, 64))) * (size // 64 or 1) if size else b""
    plain = plain[:size].ljust(size, b"x")
    recipients = [i.recipient() for i in draw(st.lists(st.sampled_from(_IDS), min_size=1, max_size=3, unique_by=id))]
    data = age.encrypt_bytes(plain, recipients)
    if draw(st.booleans()) and len(data) < 40_000:
        data = age.armor(data)
    return plain, data


@settings(max_examples=40)
@given(sealed())
def test_age_round_trips_and_only_its_recipients_open_it(made: tuple[bytes, bytes]) -> None:
    plain, data = made
    assert open_age(data) == plain
    assert open_age(data, [_OTHER]) is None


@settings(max_examples=120)
@given(sealed(), st.data())
def test_a_changed_age_file_is_refused_never_opened_to_other_bytes(made: tuple[bytes, bytes], data: st.DataObject) -> None:
    plain, blob = made
    armored = blob.startswith(b"-----BEGIN")
    buf = bytearray(blob)
    op = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete", "append"]), label="op")
    at = data.draw(st.integers(0, len(buf) - 1), label="at")
    if op == "flip":
        buf[at] ^= data.draw(st.integers(1, 255), label="xor")
    elif op == "truncate":
        del buf[at:]
    elif op == "insert":
        buf[at:at] = data.draw(st.binary(min_size=1, max_size=40), label="inserted")
    elif op == "delete":
        del buf[at : at + data.draw(st.integers(1, 100), label="n")]
    else:
        buf += data.draw(st.binary(min_size=1, max_size=40), label="appended")
    got = open_age(bytes(buf))
    if got is not None:  # only where the change cannot matter: armor's lenient white-space, base64 padding bits
        assert got == plain, (op, at)
        assert armored, (op, at, "a binary age file changed and still opened")


age_like = st.one_of(
    st.binary(max_size=600),
    st.builds(lambda a, b: b"age-encryption.org/v1\n" + a + b, st.lists(st.sampled_from([
        b"-> X25519 " + b"A" * 43 + b"\n" + b"A" * 43 + b"\n", b"-> scrypt " + b"A" * 22 + b" 22\n" + b"A" * 43 + b"\n",
        b"-> scrypt AAAAAAAAAAAAAAAAAAAAAA 99999999999999999999\nAAAA\n", b"-> \n\n", b"-> x\n" + b"A" * 64 + b"\n" * 2,
        b"-> grease \xff\n\n", b"-> a b c d e f g h i j k l m n o p q r s t u v w x y z\n\n", b"\n", b"-> X25519\n" + b"A" * 65 + b"\n",
    ]), max_size=5).map(b"".join), st.sampled_from([b"", b"---", b"--- " + b"A" * 43 + b"\n", b"--- " + b"A" * 43 + b"\n" + b"\x00" * 40,
                                                     b"--- AAAA\n", b"--- " + b"A" * 43])),
    st.builds(lambda b: b"-----BEGIN AGE ENCRYPTED FILE-----\n" + b + b"\n-----END AGE ENCRYPTED FILE-----\n", st.binary(max_size=200)),
)


@settings(max_examples=200)
@given(age_like)
def test_random_and_malformed_age_headers_are_refused_with_a_message(data: bytes) -> None:
    assert open_age(data) is None


@given(st.one_of(st.text(max_size=120), st.builds(lambda t: "age1" + t, st.text("qpzry9x8gf2tvdw0s3jn54khce6mua7lQPZ", max_size=70)),
                 st.builds(lambda t: "AGE-SECRET-KEY-1" + t, st.text("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", max_size=70))),
       st.binary(max_size=300))
def test_recipients_and_identity_files_from_anywhere_are_refused_with_a_message(text: str, blob: bytes) -> None:
    """parse_recipient and parse_identity_file refuse with AgeError only; bech32_decode (a
    primitive its callers wrap) with ValueError only."""
    for call, allowed in ((lambda: age.parse_recipient(text), AgeError), (lambda: age.parse_identity_file(blob), AgeError),
                          (lambda: age.parse_identity_file(text.encode("utf-8", "surrogatepass")), AgeError),
                          (lambda: age.bech32_decode(text), ValueError)):
        try:
            call()
        except allowed as exc:
            assert str(exc)
