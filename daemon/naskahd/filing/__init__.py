"""Filing: settled files from the drop folder to committed register rows, one batch at a time.

The order keeps a document safe at every instant (docs/architecture.md has the table), one
module per job:

1. ``store.py``: copy (or age-encrypt) each source into a temp file in its archive folder,
   hashing as it goes; fsync. Exempt ciphertext is read back and checked before anything
   else. ``early.py`` does this ahead of time while the file sits out its settle time.
2. ``entry.py``: one register transaction for the batch: duplicates are found by content,
   agenda numbers are allocated, rows are inserted as STAGED with their temp names. Commit.
3. ``filer.py``: rename each temp file to its final name (never overwriting); fsync the folders.
4. ``release.py``: remove each source, only once it is proved to be the very file copied;
   duplicates and review items are moved the same careful way.
5. ``filer.py``: mark the rows FILED (or SOURCE_STUCK when the source could not be removed).

``reconcile.py`` runs at start-up: a crash before 2 leaves orphan temp files (removed: the
sources are still in the drop folder); a crash after 2 leaves STAGED rows, finished from
the temp file or, failing that, from the source. ``filer.Filer`` is what the daemon uses.
"""

from naskahd.filing.early import EARLY_CTIME_MARGIN_NS, EARLY_MAX, EARLY_THREADS, shows_later_writes
from naskahd.filing.filer import STORE_THREADS, Filer
from naskahd.filing.items import Batch, Outcome, Ready, Result, Stored
from naskahd.filing.release import move_aside
from naskahd.filing.store import CHUNK, sha256_file, utcnow

__all__ = [
    "CHUNK", "EARLY_CTIME_MARGIN_NS", "EARLY_MAX", "EARLY_THREADS", "STORE_THREADS", "Batch", "Filer",
    "Outcome", "Ready", "Result", "Stored", "move_aside", "sha256_file", "shows_later_writes", "utcnow",
]
