#!/usr/bin/env python3
"""Register search benchmark (issue 21): ``letters.search.search`` and ``letters.view.document``
on a register of 200,000 documents; target: a search in ≤ 200 ms server time (median of 50).

Fills a fresh SQLite register (in a temporary folder, through the real migrations) with
--documents filed documents spread over three years (60 % inbound, 30 % outbound, 10 %
exempt), a third of them with letter details (number, date, sender or addressee, subject,
sifat), and the audit events filing and annotating leave (two per document, more for
exempt ones). Then runs each query of a realistic mix --repeat times on one session, as
the web process would (a page of 50, with the total count), and ``document()`` on random
documents; reports median and p95 wall clock and the median CPU time of this process per
query (on a shared machine wall clock includes others' work).

Usage: python bench/bench_letters.py [--documents 200000] [--repeat 50] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machineinfo import cpu_model  # noqa: E402  (bench/machineinfo.py)

TARGET_S = 0.200
TZ = ZoneInfo("Asia/Jakarta")
LETTER = {"inbound": "M", "outbound": "K", "exempt": "D"}
SUBJECTS = ("Undangan rapat koordinasi", "Permohonan data statistik", "Laporan kegiatan persandian", "Surat edaran bupati",
            "Nota dinas kepala bidang", "Pemberitahuan jadwal pelatihan", "Permintaan narasumber", "Penyampaian laporan keuangan")
PLACES = ("Sekretariat Daerah", "Dinas Pendidikan", "Bappeda", "Kecamatan Sipora Utara", "BPS Kabupaten", "Diskominfo Provinsi")
SIFAT = ("biasa", "segera", "sangat segera")


def fill(url: str, n: int, seed: int = 7) -> Any:
    from sqlalchemy import insert

    from naskahd.register import AuditEvent, Document, DocumentState, LetterDetails, open_register

    rnd = random.Random(seed)
    sessions = open_register(url)
    start = dt.datetime(2024, 1, 2, 1, tzinfo=dt.UTC)
    span = (dt.datetime(2026, 11, 30, tzinfo=dt.UTC) - start).total_seconds()
    counters: dict[tuple[str, int], int] = {}
    docs, details, events = [], [], []
    seq = 0
    for i in range(n):
        cat = "exempt" if i % 10 == 3 else rnd.choices(["inbound", "outbound"], [2, 1])[0]
        when = start + dt.timedelta(seconds=span * i / n + rnd.randint(0, 600))
        year = when.astimezone(TZ).year
        counters[cat, year] = num = counters.get((cat, year), 0) + 1
        agenda = f"{num:04d}/{LETTER[cat]}/{year}"
        subject = f"{SUBJECTS[i % len(SUBJECTS)]} nomor {i}"
        exempt = cat == "exempt"
        name = f"scan {i:06d} {SUBJECTS[(i * 7) % len(SUBJECTS)].lower()}.pdf"
        docs.append(dict(
            id=i + 1, agenda=agenda, category=cat, year=year, number=num, original_name=None if exempt else name,
            original_name_raw=None if exempt else name.encode(), original_name_sealed=b"sealed" if exempt else None,
            source_relpath=b"" if exempt else f"masuk/{name}".encode(),
            archive_path=f"{cat}/{year}/{when.month:02d}/{agenda.replace('/', '-')}" + (".pdf.age" if exempt else f"_{name}"),
            size=rnd.randint(80_000, 4_000_000), sha256=hashlib.sha256(b"%d" % i).hexdigest(),
            ciphertext_sha256=hashlib.sha256(b"c%d" % i).hexdigest() if exempt else None,
            ciphertext_size=rnd.randint(80_000, 4_000_000) if exempt else None,
            detected_type="pdf", received_at=when, state=DocumentState.FILED))
        seq += 1
        events.append(dict(seq=seq, at=when, event="document.filed", actor="daemon", agenda=agenda,
                           details=json.dumps({"agenda": agenda, "category": cat}), prev_sha256="0" * 64,
                           sha256=hashlib.sha256(b"e%d" % seq).hexdigest()))
        if i % 3 == 0:
            party = PLACES[i % len(PLACES)]
            details.append(dict(
                document_id=i + 1, nomor=None if exempt else f"{i % 997:03d}/{subject.split()[0][:3].upper()}/{year}",
                tanggal=(when - dt.timedelta(days=rnd.randint(0, 10))).date(),
                asal=party if cat == "inbound" else None, tujuan=party if cat == "outbound" else None,
                perihal=None if exempt else subject, sifat=SIFAT[(i // 3) % 3], catatan=None, updated_at=when, updated_by="op"))
            seq += 1
            events.append(dict(seq=seq, at=when, event="letter.annotated", actor="op", agenda=agenda,
                               details=json.dumps({"agenda": agenda, "fields": "perihal"}), prev_sha256="0" * 64,
                               sha256=hashlib.sha256(b"e%d" % seq).hexdigest()))
    with sessions.begin() as s:
        for table, rows in ((Document, docs), (LetterDetails, details), (AuditEvent, events)):
            for k in range(0, len(rows), 5000):
                s.execute(insert(table), rows[k:k + 5000])
    from naskahd.letters import index

    with sessions.begin() as s:  # as filing and annotating keep it (filing/entry.py, letters/details.py)
        index.catch_up(s, limit=None)
    return sessions


def queries(n: int) -> dict[str, Any]:
    from naskahd.letters.search import Query

    some = n // 2 - (n // 2) % 3  # a document with details
    return {
        "newest, page 1": Query(),
        "page 40": Query(page=40),
        "text, common word ('rapat')": Query(text="rapat"),
        "text, one document's number": Query(text=f"nomor {some}"),
        "text, two words": Query(text="laporan persandian"),
        "text, rare (no match)": Query(text="tidakadasamasekali"),
        "agenda number": Query(text="0123/M/2025"),
        "category + one month": Query(category="inbound", date_from=dt.date(2025, 6, 1), date_to=dt.date(2025, 6, 30)),
        "subject filter": Query(perihal="pelatihan"),
        "letter number filter": Query(nomor="045/"),
        "sifat + category": Query(sifat="sangat segera", category="outbound"),
        "text + date range": Query(text="undangan", date_from=dt.date(2026, 1, 1), date_to=dt.date(2026, 3, 31)),
    }


def measure(fn: Any, repeat: int) -> dict[str, float]:
    walls, cpus = [], []
    fn()  # warm the page cache and the statement cache, as a running web process has them
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    walls.sort()
    return {"median_s": statistics.median(walls), "p95_s": walls[min(len(walls) - 1, int(0.95 * len(walls)))],
            "cpu_median_s": statistics.median(cpus)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--documents", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", metavar="FILE", help="keep the filled register in FILE and use it again next time "
                                                  "(the same --documents)")
    args = ap.parse_args()

    from naskahd.letters import search, view
    from naskahd.register import open_register

    with tempfile.TemporaryDirectory(prefix="naskahd-bench-letters-") as tmp:
        path = Path(args.keep) if args.keep else Path(tmp) / "register.sqlite3"
        url = f"sqlite:///{path}"
        t0 = time.perf_counter()
        sessions = open_register(url) if path.exists() else fill(url, args.documents)
        fill_s = time.perf_counter() - t0
        results: dict[str, dict[str, Any]] = {}
        with sessions() as s:
            for name, q in queries(args.documents).items():
                page = search.search(s, q, TZ)
                results[name] = {**measure(lambda q=q: search.search(s, q, TZ), args.repeat), "total": page.total,
                                 "target_s": TARGET_S}
            rnd = random.Random(3)
            ids = [rnd.randint(1, args.documents) for _ in range(args.repeat + 1)]
            it = iter(ids * 2)
            results["document() (random)"] = {**measure(lambda: view.document(s, next(it), TZ), args.repeat),
                                              "total": None, "target_s": None}
        size = os.path.getsize(path)
    import sqlalchemy

    info = {"documents": args.documents, "repeat": args.repeat, "fill_s": round(fill_s, 1), "register_mb": round(size / 2**20),
            "cpu": cpu_model(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "sqlalchemy": sqlalchemy.__version__, "sqlite": __import__("sqlite3").sqlite_version, "results": results}
    missed = [k for k, r in results.items() if r["target_s"] and r["median_s"] > r["target_s"]]
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"{args.documents:,} documents ({info['register_mb']} MB register, filled in {fill_s:.0f} s); {args.repeat} runs "
              f"each; {info['cpu']}, {info['cpus']} CPUs; SQLite {info['sqlite']}")
        print(f"{'query':<34} {'median':>8} {'p95':>8} {'CPU':>8} {'matches':>8}  result")
        for name, r in results.items():
            verdict = "" if r["target_s"] is None else ("PASS" if r["median_s"] <= r["target_s"] else "MISS")
            total = "" if r["total"] is None else f"{r['total']:,}"
            print(f"{name:<34} {r['median_s'] * 1000:>6.1f}ms {r['p95_s'] * 1000:>6.1f}ms {r['cpu_median_s'] * 1000:>6.1f}ms "
                  f"{total:>8}  {verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
