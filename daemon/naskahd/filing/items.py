"""The data that travels through filing: a ready file, its stored copy, a batch, a result."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from naskahd import complete, durable
from naskahd.register import Document
from naskahd.settle import Signature


class Outcome(Enum):
    FILED = "filed"
    DUPLICATE = "duplicate"
    CHANGED = "changed"  # the file changed while it was being taken: let it settle again
    GONE = "gone"  # vanished or renamed while being taken: no row was written
    FAILED = "failed"  # an I/O error: retried later
    HELD = "held"  # cannot be filed now (exempt without a recipient): parked
    STUCK = "source_stuck"  # filed, but the source could not be removed


@dataclass(frozen=True)
class Ready:
    """A settled, complete, classified file in the drop folder."""

    relpath: str
    category: str
    signature: Signature
    detected_type: str | None = None


@dataclass
class Result:
    item: Ready
    outcome: Outcome
    detail: str = ""
    agenda: str | None = None


@dataclass
class Stored:
    """Step 1 done for ``item``: its copy (or ciphertext) is in an archive temp file."""

    item: Ready
    staged: durable.Staged
    sha256: str  # what the register keys the content by (store.Store.content_key)
    size: int
    received_at: dt.datetime
    sealed: Any = None  # age.Sealed for exempt documents
    completeness: complete.Completeness | None = None  # made by an early copy (EarlyCopies.check)
    doc: Document | None = None
    duplicate_of: Document | None = None
    duplicate_in_batch: bool = False  # of a document this very batch registers
    result: Result | None = field(default=None)


@dataclass(frozen=True)
class Batch:
    """Ready files whose step 1 runs on the store threads (Filer.begin); Filer.finish ends it."""

    items: tuple[Ready, ...]
    stored: Future[tuple[list[Result], list[Stored]]]  # Filer._sync_stores
