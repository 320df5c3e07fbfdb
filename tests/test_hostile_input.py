"""Hostile and broken input in the drop folder, against the real daemon (issue 22).

Each kind of input has its expected outcome, decided from the design (docs/architecture.md,
"bad input gets a clear message and changes nothing"; nothing lost, nothing filed twice, the
daemon keeps running, status shows what needs a person, an exempt letter's name never in a
log or status line). The table of kinds and outcomes is in docs/reliability.md ("Hostile and broken input").
Kinds share a daemon run where they can (CI time).

The corpus daemon runs as root without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH / CAP_FOWNER
(setpriv), so permissions bind it as they bind the service user.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import Daemon, all_files, noise, require_root, require_tool, wait_until, write_config

pytestmark = pytest.mark.system

MARK = "RHS" + os.urandom(6).hex()  # planted in every exempt name: must never reach a log or status


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pdf_bytes(pages: int = 2, pad: int = 0) -> bytes:
    from pypdf import PdfWriter

    w = PdfWriter()
    for _ in range(pages):
        w.add_blank_page(width=595, height=842)
    w.add_metadata({"/Title": "hostile corpus", "/Subject": os.urandom(pad // 2 + 8).hex()})
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def officer(tmp_path: Path) -> tuple[Path, str]:
    """The officer's key (made by the real age-keygen) and its recipient."""
    import subprocess

    keygen = require_tool("age-keygen")
    key = tmp_path / "officer.key"
    subprocess.run([keygen, "-o", str(key)], check=True, capture_output=True)
    return key, next(line.split(": ")[1] for line in key.read_text().splitlines() if line.startswith("# public key"))


def age_decrypt(key: Path, path: Path) -> bytes:
    import subprocess

    return subprocess.run([require_tool("age"), "-d", "-i", str(key), str(path)], check=True, capture_output=True).stdout


def bpath(root: Path, rel: bytes) -> bytes:
    return os.path.join(os.fsencode(root), rel)


def put(root: Path, rel: bytes, data: bytes) -> bytes:
    path = bpath(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


@dataclass
class Corpus:
    """What was dropped and what must become of it."""

    filed: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)  # kind -> (drop relpath, content)
    review: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # kind -> (drop relpath, reason words)
    left: dict[str, bytes] = field(default_factory=dict)  # kind -> absolute path that must stay as it is
    outside: dict[str, tuple[Path, bytes]] = field(default_factory=dict)  # kind -> file outside, content it keeps
    duplicates: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)  # kind -> (relpath, content filed once)


def capless_daemon(tmp_path: Path, **kwargs) -> Daemon:
    require_root()
    setpriv = require_tool("setpriv")
    cfg = write_config(tmp_path / "naskahd", **kwargs)
    return Daemon(cfg.parent, cfg, prefix=[setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"])


@pytest.fixture
def corpus_daemon(tmp_path: Path):
    made: list[Daemon] = []

    def make(**kwargs) -> Daemon:
        d = capless_daemon(tmp_path, **kwargs)
        made.append(d)
        return d.start()

    yield make
    for i, d in enumerate(made):
        d.stop()
        (tmp_path / f"daemon-{i}.log").write_text(d.log_text(), encoding="utf-8")  # for a post-mortem


def assert_quiet_about_exempt_names(d: Daemon) -> None:
    """The planted marker is in no log line, no status (either language), no review listing."""
    assert MARK not in d.log_text(), [line for line in d.log_text().splitlines() if MARK in line][:3]
    for lang in ("C.UTF-8", "id_ID.UTF-8"):
        for args in (("status",), ("status", "--json"), ("review",), ("list",), ("list", "--json")):
            out = d.cli(*args, env={"LANG": lang})
            assert MARK not in out.stdout + out.stderr, (args, lang)
            assert "Traceback" not in out.stderr, (args, out.stderr)


def documents_by_hash(d: Daemon, key: Path | None = None) -> dict[str, list[dict]]:
    """Documents by the SHA-256 of their content (exempt ones: decrypted with the officer's key)."""
    out: dict[str, list[dict]] = {}
    for doc in d.documents():
        digest = doc["sha256"]
        if doc["category"] == "exempt" and key is not None:
            digest = sha(age_decrypt(key, d.archive / doc["archive_path"]))
        out.setdefault(digest, []).append(doc)
    return out


def assert_register_matches_archive(d: Daemon) -> None:
    """Every document's archive file is there with its registered hash (exempt: ciphertext)."""
    for doc in d.documents():
        assert file_sha(d.archive / doc["archive_path"]) == (doc["ciphertext_sha256"] or doc["sha256"]), doc["archive_path"]
    numbers: dict[str, list[int]] = {}
    for doc in d.documents():
        n, letter, year = doc["agenda"].split("/")
        numbers.setdefault(f"{letter}/{year}", []).append(int(n))
    for key, got in numbers.items():  # gapless per category and year
        assert sorted(got) == list(range(1, len(got) + 1)), key


def campaign_invariants(d: Daemon, tmp_path: Path, dropped: dict[str, bytes], key: Path | None = None) -> None:
    """The campaigns' shared checker (tests/campaign/invariants.py): nothing lost or twice,
    archive = register, gapless numbers, no exempt plaintext or name outside the drop folder."""
    from campaign.invariants import check

    log = tmp_path / "daemon.log"
    log.write_text(d.log_text(), encoding="utf-8")
    markers = [MARK.encode(), b"PLAINTEXT-" + MARK.encode()]
    violations = check(d.config, dropped=dropped, exempt_markers=markers, identity=key, logs=[log])
    assert not violations, "\n".join(violations[:20])


# -- the static corpus: everything that can be dropped at once ------------------------------------------
def drop_static(d: Daemon, tmp_path: Path) -> Corpus:
    c = Corpus()
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.pdf"
    secret.write_bytes(b"outside the drop folder: never filed through a link")
    c.outside["symlink to a file outside"] = (secret, secret.read_bytes())
    os.symlink(secret, d.drop / "masuk" / "link.pdf")
    c.review["symlink to a file outside"] = (b"masuk/link.pdf", "symbolic link")

    folder = outside / "folder"
    folder.mkdir()
    (folder / "inner.pdf").write_bytes(b"inside a folder outside")
    c.outside["symlinked folder"] = (folder / "inner.pdf", b"inside a folder outside")
    os.symlink(folder, d.drop / "keluar" / "linked-folder")
    c.review["symlinked folder"] = (b"keluar/linked-folder", "symbolic link")

    os.symlink(d.drop / "masuk" / "loop-b.pdf", d.drop / "masuk" / "loop-a.pdf")
    os.symlink(d.drop / "masuk" / "loop-a.pdf", d.drop / "masuk" / "loop-b.pdf")
    c.review["symlink loop (a → b → a)"] = (b"masuk/loop-a.pdf", "symbolic link")
    c.review["symlink loop, other end"] = (b"masuk/loop-b.pdf", "symbolic link")

    os.symlink(outside / "never-there.pdf", d.drop / "masuk" / "dangling.pdf")
    c.review["dangling symlink"] = (b"masuk/dangling.pdf", "symbolic link")

    os.symlink(secret, d.drop / "dikecualikan" / f"{MARK}-link.pdf")
    c.review["exempt symlink (name withheld)"] = (f"dikecualikan/{MARK}-link.pdf".encode(), "symbolic link")

    hard = outside / "hard.pdf"
    hard_data = os.urandom(5000)
    hard.write_bytes(hard_data)
    os.link(hard, d.drop / "masuk" / "hardlink.pdf")
    c.filed["hard link to a file outside"] = (b"masuk/hardlink.pdf", hard_data)
    c.outside["hard link to a file outside"] = (hard, hard_data)

    os.mkfifo(d.drop / "masuk" / "pipe.pdf")
    c.review["FIFO"] = (b"masuk/pipe.pdf", "named pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(d.drop / "keluar" / "sock.pdf"))
    c.review["socket"] = (b"keluar/sock.pdf", "socket")
    d._corpus_socket = sock  # type: ignore[attr-defined]  # kept open for the run
    os.mknod(d.drop / "masuk" / "null.pdf", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    c.review["character device node"] = (b"masuk/null.pdf", "device node")
    os.mknod(d.drop / "masuk" / "loop.pdf", stat.S_IFBLK | 0o600, os.makedev(7, 250))
    c.review["block device node"] = (b"masuk/loop.pdf", "device node")

    inside = noise(700)
    put(d.drop, b"masuk/dir.pdf/inside.pdf", inside)
    c.filed["directory named like a file"] = (b"masuk/dir.pdf/inside.pdf", inside)
    (d.drop / "masuk" / "empty-folder.pdf").mkdir()
    c.left["empty directory named like a file"] = bpath(d.drop, b"masuk/empty-folder.pdf")

    (d.drop / "masuk" / "empty.pdf").touch()
    c.review["zero bytes"] = (b"masuk/empty.pdf", "empty")
    (d.drop / "dikecualikan" / f"{MARK} kosong.pdf").touch()
    c.review["exempt zero bytes (name withheld)"] = (f"dikecualikan/{MARK} kosong.pdf".encode(), "empty")

    names = {
        "name with a newline": b"masuk/new\nline.pdf",
        "name with control characters (ANSI escape)": b"masuk/\x1b[31mred\x1b[0m\x07bell\x7f.pdf",
        "name with a carriage return and a tab": b"keluar/cr\rtab\t.pdf",
        "non-UTF-8 bytes in the name": b"masuk/bad-\xff\xfe\xc3(.pdf",
        "non-UTF-8 bytes in a folder name": b"keluar/\xe9t\xe9/surat.pdf",
        "255-byte name": b"masuk/" + b"N" * 251 + b".pdf",
        "255-byte name of 2-byte characters": b"masuk/" + "é".encode() * 125 + b"x.pdf",
        "leading dash": b"masuk/-rf.pdf",
        "leading double dash": b"keluar/--help",
        "name of dots and spaces": b"masuk/ . .pdf",
        "name with a trailing dot": b"masuk/ends with a dot.",
        "name with shell and SQL characters": b"masuk/$(reboot); DROP TABLE documents;--'\".pdf",
        "name with a backslash and Windows-forbidden characters": b'masuk/a\\b<c>d:e|f?g*.pdf',
        "exempt name with a newline and bad bytes (withheld)": f"dikecualikan/{MARK}\n".encode() + b"\xff.pdf",
    }
    for kind, rel in names.items():
        data = os.urandom(300) + rel
        put(d.drop, rel, data)
        c.filed[kind] = (rel, data)

    not_pdf = os.urandom(4000)
    put(d.drop, b"masuk/not-a-pdf.pdf", not_pdf)
    c.filed[".pdf that is not a PDF"] = (b"masuk/not-a-pdf.pdf", not_pdf)

    whole = pdf_bytes(3)
    put(d.drop, b"masuk/truncated.pdf", whole[: len(whole) * 2 // 3])
    c.review["truncated PDF"] = (b"masuk/truncated.pdf", "still incomplete")
    put(d.drop, f"dikecualikan/{MARK}-cut.pdf".encode(), whole[: len(whole) // 2])
    c.review["exempt truncated PDF (name withheld)"] = (f"dikecualikan/{MARK}-cut.pdf".encode(), "still incomplete")

    import pdfs

    junk = b"MFP-SCAN 4.2 junk before the header\r\n" + pdfs.build(pdfs.page_tree(2), xref="hybrid")
    put(d.drop, b"keluar/junk-before-header.pdf", junk)
    c.filed["PDF with junk before %PDF- (offsets counted from the header)"] = (b"keluar/junk-before-header.pdf", junk)
    junk_abs = b"\xef\xbb\xbf" + whole[3:]  # a byte-order mark over the first bytes: offsets still right
    put(d.drop, b"keluar/bom.pdf", junk_abs)
    c.filed["PDF with a byte-order mark before %PDF-"] = (b"keluar/bom.pdf", junk_abs)

    locked = noise(900)
    path = put(d.drop, b"masuk/locked.pdf", locked)
    os.chmod(path, 0)
    c.filed["unreadable permissions (fixed by a person later)"] = (b"masuk/locked.pdf", locked)

    deep = b"masuk/" + b"/".join(b"level-%02d-" % i + b"d" * 40 for i in range(70)) + b"/deep.pdf"
    deep_data = noise(400)
    put(d.drop, deep, deep_data)
    c.filed["deeply nested folder (70 levels, 3.5 KB path)"] = (deep, deep_data)

    closed = noise(600)
    put(d.drop, b"keluar/closed/inside.pdf", closed)
    os.chmod(d.drop / "keluar" / "closed", 0)
    c.filed["unreadable folder (fixed by a person later)"] = (b"keluar/closed/inside.pdf", closed)
    (d.drop / "dikecualikan" / f"{MARK}-closed").mkdir()
    put(d.drop, f"dikecualikan/{MARK}-closed/x.pdf".encode(), b"exempt, in a folder nobody may read")
    os.chmod(d.drop / "dikecualikan" / f"{MARK}-closed", 0)
    c.left["unreadable exempt folder (name withheld)"] = bpath(d.drop, f"dikecualikan/{MARK}-closed".encode())

    # Deeper than PATH_MAX (4096 bytes): no path names the file; it waits, and status says why.
    parts = [b"P%02d" % i + b"p" * 250 for i in range(17)]
    fd = os.open(d.drop / "masuk", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts:
            os.mkdir(part, dir_fd=fd)
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        with open(os.open(b"too-deep.pdf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as f:
            f.write(b"beyond PATH_MAX")
    finally:
        os.close(fd)
    c.unreachable = b"masuk/" + b"/".join(parts)  # type: ignore[attr-defined]

    exempt = b"PLAINTEXT-" + MARK.encode() + os.urandom(2000)  # the checker searches for it outside the drop folder
    put(d.drop, f"dikecualikan/{MARK} rahasia.pdf".encode(), exempt)
    c.filed["exempt letter (name withheld)"] = (f"dikecualikan/{MARK} rahasia.pdf".encode(), exempt)

    twin = os.urandom(1500)
    put(d.drop, b"masuk/twin-a.pdf", twin)
    put(d.drop, b"keluar/twin-b.pdf", twin)
    c.duplicates["same content under two names at once"] = (b"", twin)

    for rel in (b"tinjau/by-hand.pdf", b"duplikat/by-hand.pdf", b"tinjau/dikecualikan/by-hand.pdf"):
        c.left[f"dropped into {rel.rsplit(b'/', 1)[0].decode()}/ by hand"] = put(d.drop, rel, os.urandom(100))
    for rel in (b"masuk/Thumbs.db", b"masuk/~$surat.docx", b"masuk/scan.pdf.part", b"keluar/@eaDir/x.pdf"):
        c.left[f"ignored litter {rel.decode()}"] = put(d.drop, rel, os.urandom(50))

    with open(d.drop / "masuk" / "zeros.pdf", "wb") as f:  # sparse: 1 MiB of zero bytes, never written
        f.truncate(1024 * 1024)
    c.review["only zero bytes (pre-allocated, nothing written)"] = (b"masuk/zeros.pdf", "only zero bytes")
    put(d.drop, b"keluar/header-only.pdf", b"%PDF-1.7\n" + os.urandom(200_000))
    c.review["a PDF header and nothing of its end"] = (b"keluar/header-only.pdf", "%%EOF")
    (d.drop / "masuk" / "sub").mkdir()
    (d.drop / "masuk" / "sub" / "same-name.pdf").touch()
    (d.drop / "keluar" / "same-name.pdf").touch()
    c.review["two files of one name to review"] = (b"masuk/sub/same-name.pdf", "empty")
    c.review["two files of one name to review (the other)"] = (b"keluar/same-name.pdf", "empty")

    linked = os.urandom(1200)
    put(d.drop, b"masuk/hard-a.pdf", linked)
    os.link(bpath(d.drop, b"masuk/hard-a.pdf"), bpath(d.drop, b"keluar/hard-b.pdf"))
    c.duplicates["hard link between two names in the drop folder"] = (b"", linked)
    future = noise(333)
    os.utime(put(d.drop, b"masuk/from-2100.pdf", future), (4102444800, 4102444800))
    c.filed["modification time in 2100"] = (b"masuk/from-2100.pdf", future)
    old_time = noise(334)
    os.utime(put(d.drop, b"masuk/from-1970.pdf", old_time), (0, 0))
    c.filed["modification time 0 (1970)"] = (b"masuk/from-1970.pdf", old_time)
    for kind, rel in {"hidden name (leading dot)": b"masuk/.hidden.pdf",
                      "right-to-left override in the name": "masuk/surat\u202efdp.exe".encode()}.items():
        data = os.urandom(222) + rel
        put(d.drop, rel, data)
        c.filed[kind] = (rel, data)

    put(d.drop, b"top-level.pdf", os.urandom(80))
    c.review["file at the drop folder's top (no rule)"] = (b"top-level.pdf", "no rule")
    put(d.drop, b"TINJAU/wrong-case.pdf", os.urandom(81))
    c.review["a folder named like review in another case"] = (b"TINJAU/wrong-case.pdf", "no rule")
    return c


def test_the_static_corpus_each_kind_gets_its_outcome(corpus_daemon, tmp_path: Path) -> None:
    key, recipient = officer(tmp_path)
    d = corpus_daemon(settle=0.4, incomplete_after=4, rescan=2, recipients=[recipient])
    c = drop_static(d, tmp_path)
    before_left = {k: (os.lstat(p).st_ino, Path(os.fsdecode(p)).read_bytes() if os.path.isfile(p) else None) for k, p in c.left.items()}
    n_filed = len(c.filed) - 2 + len(c.duplicates)  # the unreadable file and folder come later
    d.wait_event("document.registered", count=n_filed, timeout=60)
    d.wait_event("document.review", count=len(c.review), timeout=60)
    d.wait_event("document.duplicate", count=len(c.duplicates), timeout=30)
    # The unreadable file: named with the user and what to do, in status, retried; a person fixes it.
    ev = d.wait_event("document.failed", path="masuk/locked.pdf", timeout=10)
    assert "permission denied" in ev["error"] and "chmod" in ev["error"]
    wait_until(lambda: any("locked.pdf" in p for p in d.status()["problems"]), 10, "status names the unreadable file", d)
    # Folders that cannot be listed, and a path too long to name: status says which and what to do.
    ev = d.wait_event("drop.unreadable", path="keluar/closed", timeout=10)
    assert "permission denied" in ev["error"] and "chmod" in ev["error"]
    d.wait_event("drop.unreadable", timeout=10, count=3)  # that folder, the exempt one, the path too deep
    assert any("longer than the system allows" in e["error"] for e in d.find("drop.unreadable")), d.find("drop.unreadable")
    problems = " | ".join(d.status()["problems"])
    assert "keluar/closed" in problems and "longer than the system allows" in problems and "[name withheld]" in problems
    shown = d.cli("status", env={"LANG": "id_ID.UTF-8"}).stdout
    assert "lebih panjang" in shown and "izin ditolak" in shown, shown
    os.chmod(bpath(d.drop, b"masuk/locked.pdf"), 0o644)
    os.chmod(d.drop / "keluar" / "closed", 0o755)
    d.wait_event("document.registered", count=n_filed + 2, timeout=30)
    d.wait_event("drop.readable", path="keluar/closed", timeout=10)

    by_hash = documents_by_hash(d, key)
    for kind, (rel, data) in c.filed.items():
        docs = by_hash.get(sha(data), [])
        assert len(docs) == 1, f"{kind}: registered {len(docs)}×"
        doc = docs[0]
        assert not os.path.lexists(bpath(d.drop, rel)), f"{kind}: source left in the drop folder"
        assert len(os.fsencode(Path(doc["archive_path"]).name)) <= 255, kind
        assert all(ch >= " " and ch != "\x7f" for ch in doc["archive_path"]), f"{kind}: control character in {doc['archive_path']!r}"
        if rel.startswith(b"dikecualikan/"):
            assert doc["original_name"] is None or MARK not in str(doc["original_name"]), kind
            assert doc["archive_path"].endswith(".age") and MARK not in doc["archive_path"], kind
        else:
            assert doc["original_name"] == os.path.basename(rel).decode("utf-8", "backslashreplace"), kind
            assert (d.archive / doc["archive_path"]).read_bytes() == data, kind
    assert by_hash[sha(c.filed["PDF with junk before %PDF- (offsets counted from the header)"][1])][0]["detected_type"] == "pdf-repaired"
    assert by_hash[sha(c.filed[".pdf that is not a PDF"][1])][0]["detected_type"] is None

    for kind, (_, data) in c.duplicates.items():  # registered once, the other name moved to duplikat/
        assert len(by_hash.get(sha(data), [])) == 1, kind
        moved = [p for p in all_files(d.drop / "duplikat") if p.read_bytes() == data]
        assert len(moved) == 1, f"{kind}: {len(moved)} in duplikat/"
    assert len(d.find("document.duplicate")) == len(c.duplicates)

    st = d.status()
    problems = " | ".join(st["problems"])
    for kind, (rel, words) in c.review.items():
        assert not os.path.lexists(bpath(d.drop, rel)), f"{kind}: still in place, not moved to review"
        assert not any(doc for docs in by_hash.values() for doc in docs if doc["original_name"] == os.path.basename(rel).decode(errors="replace")), kind
        if not rel.startswith(b"dikecualikan/"):
            name = os.path.basename(rel)
            base, ext = os.path.splitext(name)
            assert os.path.lexists(bpath(d.drop, b"tinjau/" + name)) or os.path.lexists(bpath(d.drop, b"tinjau/" + base + b" (2)" + ext)), \
                f"{kind}: not in tinjau/"
            assert words in problems or kind == "symlink loop, other end" or words in problems, f"{kind}: status does not say '{words}'"
        else:
            assert len(os.listdir(d.drop / "tinjau" / "dikecualikan")) >= 1
    exempt_review = [p for p in (d.drop / "tinjau" / "dikecualikan").iterdir() if p.name != "by-hand.pdf"]
    assert len(exempt_review) == sum(1 for r, _ in c.review.values() if r.startswith(b"dikecualikan/"))
    # Files a person put into tinjau/ by hand are left there and counted: they wait for a person too.
    assert st["review"] == len(c.review) + 2, d.cli("review").stdout
    listing = d.cli("review").stdout
    assert "by-hand.pdf" in listing and listing.count("moved to review") == 2, listing
    assert d.cli("status").returncode == 1  # a person is needed: review items wait

    for kind, (path, data) in c.outside.items():
        assert path.read_bytes() == data, f"{kind}: the file outside changed"
    assert c.outside["symlinked folder"][0].parent.is_dir()
    for kind, p in c.left.items():
        assert os.path.lexists(p), f"{kind}: gone"
        ino, data = before_left[kind]
        assert os.lstat(p).st_ino == ino and (data is None or Path(os.fsdecode(p)).read_bytes() == data), f"{kind}: changed"

    deep_fd = os.open(d.drop / "masuk", os.O_RDONLY | os.O_DIRECTORY)
    try:  # still there, untouched, for a person to move
        for part in c.unreachable.split(b"/")[1:]:  # type: ignore[attr-defined]
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=deep_fd)
            os.close(deep_fd)
            deep_fd = nxt
        assert os.stat(b"too-deep.pdf", dir_fd=deep_fd).st_size == len(b"beyond PATH_MAX")
    finally:
        os.close(deep_fd)

    assert_register_matches_archive(d)
    assert_quiet_about_exempt_names(d)
    assert "Traceback" not in d.log_text()
    assert d.proc is not None and d.proc.poll() is None, "the daemon stopped"
    dropped = {os.fsdecode(rel): data for rel, data in c.filed.values()}
    dropped |= {f"masuk/{kind}": data for kind, (_, data) in c.duplicates.items()}  # one of its names: registered once
    campaign_invariants(d, tmp_path, dropped, key)
    d._corpus_socket.close()  # type: ignore[attr-defined]


# -- the moving corpus: files that change while the daemon looks at them ----------------------------------
def temps(d: Daemon) -> list[Path]:
    return [p for p in d.archive.rglob(".naskahd-tmp-*")]


def when_copying(d: Daemon, timeout: float = 20) -> None:
    """Return as soon as the daemon has started copying something into the archive."""
    wait_until(lambda: temps(d), timeout, "a copy into the archive started", d)


def write_slowly(path: Path, chunks: list[bytes], pause: float, keep_open: bool) -> None:
    if keep_open:
        with open(path, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
                f.flush()
                time.sleep(pause)
    else:
        for chunk in chunks:
            with open(path, "ab") as f:
                f.write(chunk)
            time.sleep(pause)


def test_the_moving_corpus_nothing_lost_nothing_twice(corpus_daemon, long_run: bool, tmp_path: Path) -> None:
    d = corpus_daemon(settle=1.0, incomplete_after=120, rescan=2)
    expect: dict[str, bytes] = {}  # kind -> the content that must be registered exactly once
    maybe: dict[str, bytes] = {}  # kind -> content that may be registered (at most once): replaced meanwhile

    # A file growing for a minute (CI: 8 s), the writer holding it open; and one appended to
    # by a writer that opens and closes it each time, with pauses shorter than settle.
    seconds = 60 if long_run else 8
    held = [os.urandom(64 * 1024) for _ in range(int(seconds / 0.3))]
    appended = [os.urandom(32 * 1024) for _ in range(int(seconds / 0.3))]
    writers = [
        threading.Thread(target=write_slowly, args=(d.drop / "masuk" / "growing-open.pdf", held, 0.3, True)),
        threading.Thread(target=write_slowly, args=(d.drop / "keluar" / "growing-appended.bin", appended, 0.3, False)),
    ]
    for w in writers:
        w.start()
    expect["a file growing for a minute (writer holds it open)"] = b"".join(held)
    expect["a file growing for a minute (appended, closed each time)"] = b"".join(appended)

    big = 96 * 1024 * 1024
    # Replaced (another file renamed over its name) while it is being copied and hashed.
    first, second = os.urandom(big), os.urandom(4000)
    (d.drop / "masuk" / "replaced.pdf").write_bytes(first)
    when_copying(d)
    (d.drop / "masuk" / ".replacement").write_bytes(second)
    os.rename(d.drop / "masuk" / ".replacement", d.drop / "masuk" / "replaced.pdf")
    maybe["replaced while being hashed (the first)"] = first
    expect["replaced while being hashed (the replacement)"] = second
    d.wait_event("document.registered", path="masuk/replaced.pdf", timeout=60)

    # Overwritten in place (same inode, same size) while it is being copied.
    before, after = os.urandom(big), os.urandom(big)
    path = d.drop / "keluar" / "rewritten.pdf"
    path.write_bytes(before)
    when_copying(d)
    with open(path, "r+b") as f:
        f.write(after)
    maybe["overwritten in place while being copied (before)"] = before
    expect["overwritten in place while being copied (after)"] = after
    wait_until(lambda: not path.exists(), 60, "the rewritten file filed", d)

    # Renamed while it is being copied.
    moving = os.urandom(big)
    (d.drop / "masuk" / "moving.pdf").write_bytes(moving)
    when_copying(d)
    os.rename(d.drop / "masuk" / "moving.pdf", d.drop / "masuk" / "moved.pdf")
    expect["renamed while being copied"] = moving
    wait_until(lambda: not (d.drop / "masuk" / "moved.pdf").exists(), 60, "the renamed file filed", d)

    # A name that changes case while it settles; a folder renamed while its files settle.
    case = os.urandom(3000)
    (d.drop / "masuk" / "case.pdf").write_bytes(case)
    os.rename(d.drop / "masuk" / "case.pdf", d.drop / "masuk" / "CASE.PDF")
    expect["a name that changes case"] = case
    (d.drop / "keluar" / "batch-a").mkdir()
    for i in range(5):
        data = os.urandom(2000 + i)
        (d.drop / "keluar" / "batch-a" / f"f{i}.pdf").write_bytes(data)
        expect[f"a folder renamed while its files settle ({i})"] = data
    os.rename(d.drop / "keluar" / "batch-a", d.drop / "keluar" / "batch-b")

    # Many files at once (CI: 500; --long: 10,000), and a big sparse file (CI: 256 MiB; --long: 4 GiB).
    many = 10_000 if long_run else 500
    for i in range(many):
        data = b"many %d " % i + noise(24)
        (d.drop / "masuk" / "many" / f"m{i // 1000}").mkdir(parents=True, exist_ok=True)
        (d.drop / "masuk" / "many" / f"m{i // 1000}" / f"m{i:05d}.pdf").write_bytes(data)
        expect[f"many files at once ({i})"] = data
    size = 4 * 1024**3 if long_run else 256 * 1024**2
    head, tail = os.urandom(1024 * 1024), os.urandom(1024 * 1024)
    with open(d.drop / "masuk" / "huge.bin", "wb") as f:
        f.write(head)
        f.seek(size - len(tail))
        f.write(tail)
    h = hashlib.sha256(head)
    zeros = bytes(1024 * 1024)
    for _ in range((size - len(head) - len(tail)) // len(zeros)):
        h.update(zeros)
    h.update(tail)
    huge_sha = h.hexdigest()
    for w in writers:
        w.join()
    d.wait_event("document.registered", count=len(expect), timeout=600 if long_run else 180)
    # Every scan out of the drop folder (a count of registrations alone passes early: the
    # first content of a replaced file may be registered too).
    wait_until(lambda: all_files(d.drop) == [], 600 if long_run else 180, "every scan filed out of the drop folder", d)
    d.wait_event("document.registered", path="masuk/huge.bin", timeout=600 if long_run else 120)
    time.sleep(1.0)  # room for a wrong second registration

    docs = d.documents()
    by_hash: dict[str, list[dict]] = {}
    for doc in docs:
        by_hash.setdefault(doc["sha256"], []).append(doc)
    for kind, data in expect.items():
        assert len(by_hash.get(sha(data), [])) == 1, f"{kind}: registered {len(by_hash.get(sha(data), []))}×"
    for kind, data in maybe.items():
        assert len(by_hash.get(sha(data), [])) <= 1, f"{kind}: registered twice"
    (huge,) = [doc for doc in docs if doc["original_name"] == "huge.bin"]
    assert huge["size"] == size and huge["sha256"] == huge_sha
    known = {sha(x) for x in [*expect.values(), *maybe.values()]} | {huge["sha256"]}
    assert set(by_hash) <= known, "a registered content no scan ever had (a torn copy)"
    assert {doc["original_name"] for doc in by_hash[sha(expect["renamed while being copied"])]} <= {"moving.pdf", "moved.pdf"}
    assert by_hash[sha(expect["a name that changes case"])][0]["original_name"] == "CASE.PDF"
    assert all(doc["archive_path"].count("/") == 3 for doc in docs)  # category/YYYY/MM/name, whatever the depth
    assert all_files(d.drop) == []
    assert temps(d) == []
    assert_register_matches_archive(d)
    assert d.status()["problems"] == [] and d.cli("status").returncode == 0
    assert "Traceback" not in d.log_text()
    campaign_invariants(d, tmp_path, {
        "masuk/replaced.pdf": second, "keluar/rewritten.pdf": after,
        "masuk/growing-open.pdf": expect["a file growing for a minute (writer holds it open)"],
        "keluar/growing-appended.bin": expect["a file growing for a minute (appended, closed each time)"],
        "masuk/moved.pdf": moving, "masuk/CASE.PDF": case,
        **{f"keluar/batch-b/f{i}.pdf": expect[f"a folder renamed while its files settle ({i})"] for i in range(5)},
        **{f"masuk/many/m{i // 1000}/m{i:05d}.pdf": expect[f"many files at once ({i})"] for i in range(many)},
        **{f"masuk/{kind}": data for kind, data in maybe.items() if sha(data) in by_hash},  # registered before it was replaced
        "masuk/huge.bin": huge_sha,
    })

    # The same file again, once filed: a duplicate moved aside, not registered twice.
    (d.drop / "keluar" / "again.pdf").write_bytes(case)
    ev = d.wait_event("document.duplicate", timeout=20)
    assert ev["duplicate_of"] == by_hash[sha(case)][0]["agenda"]
    assert (d.drop / "duplikat" / "again.pdf").read_bytes() == case
    assert len(d.documents()) == len(docs)


def test_files_where_naskahd_keeps_review_and_duplicates(corpus_daemon) -> None:
    """A person (or a scanner profile) made files named tinjau and duplikat where naskahd's
    folders go: nothing is lost or overwritten, the daemon keeps running, status names the
    cause, and once the files are moved away the waiting scans go where they belong."""
    d = corpus_daemon(settle=0.3, incomplete_after=60, rescan=1)
    for name in ("tinjau", "duplikat"):
        folder = d.drop / name
        if folder.is_dir():
            os.rmdir(folder)
        folder.write_bytes(f"a file named {name}".encode())
    twin = noise(800)
    (d.drop / "stray.pdf").write_bytes(b"no rule for me")
    (d.drop / "masuk" / "first.pdf").write_bytes(twin)
    d.wait_event("document.registered", timeout=20)
    (d.drop / "keluar" / "again.pdf").write_bytes(twin)
    wait_until(lambda: len(d.find("document.failed")) >= 2, 20, "both refusals", d)
    out = d.cli("status", "--json")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    problems = " | ".join(json.loads(out.stdout)["problems"])
    assert f"{d.drop / 'tinjau'} is not a folder naskahd can use" in problems, problems
    assert f"{d.drop / 'duplikat'} is not a folder naskahd can use" in problems, problems
    shown = d.cli("status", env={"LANG": "id_ID.UTF-8"}).stdout
    assert "bukan folder yang dapat dipakai naskahd" in shown, shown
    review = d.cli("review")  # not "nothing waits": the folder cannot be looked at
    assert review.returncode == 1 and "is not a folder naskahd can use" in review.stderr and "Traceback" not in review.stderr, review
    assert (d.drop / "stray.pdf").exists() and (d.drop / "keluar" / "again.pdf").read_bytes() == twin
    assert (d.drop / "tinjau").read_bytes() == b"a file named tinjau"  # never overwritten
    assert len(d.documents()) == 1
    for name in ("tinjau", "duplikat"):  # a person moves them away
        os.rename(d.drop / name, d.root / f"{name}.moved-away")
    d.wait_event("document.review", timeout=30)
    d.wait_event("document.duplicate", timeout=30)
    assert (d.drop / "tinjau" / "stray.pdf").exists() and (d.drop / "duplikat" / "again.pdf").read_bytes() == twin
    assert len(d.documents()) == 1 and d.proc.poll() is None
