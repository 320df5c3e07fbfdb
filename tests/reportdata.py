"""A register filled with synthetic documents, for the report tests and bench/bench_report.py."""

from __future__ import annotations

import datetime as dt
import hashlib
import random

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from naskahd.register import AgendaCounter, Document, DocumentState, open_register

LETTER = {"inbound": "M", "outbound": "K", "exempt": "D"}
TITLES = ("Undangan Rapat Koordinasi", "Nota Dinas Kepala Bidang", "Surat Edaran Bupati", "Laporan Kegiatan Persandian")
SECRET_NAME = "RAHASIA Rencana Pengamanan Pilkada.pdf"  # the name an exempt letter had in the drop folder


def fill(url: str, n: int, *, year: int = 2026, month: int = 11, seed: int = 1) -> sessionmaker[Session]:
    """``n`` filed documents spread over the month (60 % inbound, 30 % outbound, 10 % exempt)."""
    rnd = random.Random(seed)
    sessions = open_register(url)
    start = dt.datetime(year, month, 1, 1, 0, tzinfo=dt.UTC)
    counters = dict.fromkeys(LETTER, 0)
    rows = []
    for i in range(n):
        cat = "exempt" if i % 10 == 3 else rnd.choices(["inbound", "outbound"], [2, 1])[0]
        counters[cat] += 1
        num = counters[cat]
        when = start + dt.timedelta(seconds=int(i * 27 * 86400 / max(n, 1)) + rnd.randint(0, 3000))
        sha = hashlib.sha256(f"{seed}-{i}".encode()).hexdigest()
        exempt = cat == "exempt"
        name = f"{TITLES[i % 4]} nomor {i} tahun {year}.pdf"
        stem = f"{num:04d}-{LETTER[cat]}-{year}"
        rows.append(dict(
            agenda=f"{num:04d}/{LETTER[cat]}/{year}", category=cat, year=year, number=num,
            original_name=None if exempt else name, original_name_raw=None if exempt else name.encode(),
            original_name_sealed=b"age-encrypted name" if exempt else None,
            source_relpath=b"" if exempt else f"masuk/{name}".encode(),
            archive_path=f"{cat}/{year}/{month:02d}/{stem}" + (".pdf.age" if exempt else f"_{name}"),
            size=rnd.randint(80_000, 4_000_000), sha256=sha,
            ciphertext_sha256=hashlib.sha256(sha.encode()).hexdigest() if exempt else None,
            ciphertext_size=rnd.randint(80_000, 4_000_000) if exempt else None,
            detected_type="pdf", received_at=when, state=DocumentState.FILED,
        ))
    with sessions.begin() as s:
        for k in range(0, len(rows), 2000):
            s.execute(insert(Document), rows[k:k + 2000])
        # The agenda counters, as filing keeps them (the numbers given above).
        s.execute(insert(AgendaCounter), [{"category": c, "year": year, "last_number": n} for c, n in counters.items() if n])
    return sessions
