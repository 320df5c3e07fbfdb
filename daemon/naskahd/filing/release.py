"""Step 4, and every other move of a source: out of the drop folder, into duplicates or review.

A source leaves its place only after its archive copy is durable and its row committed.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from naskahd import durable, naming
from naskahd.register import DocumentState
from naskahd.settle import Signature


def move_aside(source: Path, folder: Path, name: str) -> str:
    """Rename ``source`` into ``folder`` under ``name`` or a numbered variant; never overwrite.

    A rename within the drop folder: exempt plaintext never leaves it. Returns the name used.
    """
    durable.makedirs(folder)
    candidate = name
    for n in range(2, 10_000):
        try:
            durable.rename_noreplace(source, folder / candidate)
        except FileExistsError:
            candidate = naming.numbered(name, n)
            continue
        durable.fsync_dir(folder)
        durable.fsync_dir(source.parent)
        return candidate
    raise FileExistsError(errno.EEXIST, "no free name", str(folder / name))


def remove_source(source: Path, signature: Signature) -> DocumentState | OSError:
    """Remove the filed scan at ``source`` if it is still the very file taken (``signature``).

    FILED when it is gone (or was replaced: the new content is a new file, filed on its
    own); the OSError when it could not be removed.
    """
    try:
        st = os.lstat(source)
    except FileNotFoundError:
        return DocumentState.FILED
    if Signature.of(st) != signature:
        return DocumentState.FILED
    try:
        os.unlink(source)
    except FileNotFoundError:
        pass
    except OSError as exc:
        return exc
    return DocumentState.FILED
