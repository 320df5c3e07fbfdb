"""Step 4, and every other move of a source: out of the drop folder, into duplicates or review.

A source leaves its place only after its archive copy is durable and its row committed,
and only once it is proved to be the very file that was taken. Comparing before removing
by name can never prove that: between the look and the ``unlink(path)`` a scanner (or a
person over SMB) may rename a new letter onto the same name, and the new letter would be
deleted. So every removal or move first *claims* the file: it is renamed into naskahd's
private holding folder on the drop filesystem (``config.HOLD_FOLDER``; a rename never
leaves the filesystem, so exempt plaintext stays in the drop folder), and the held file
itself is then examined. Nobody else writes in the holding folder, so what is examined
there is what is removed or moved. A held file that is not the one taken (another inode,
or changed since) is put back under its name, never overwriting; if that name was taken
again meanwhile, it goes to review with the reason.

A crash leaves at most a file in the holding folder; start-up reconciliation
(``reconcile.py``) removes it if its content is registered with a sound archive copy and
puts it back otherwise.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from naskahd import durable, naming
from naskahd.categories import DROP_FOLDER, EXEMPT
from naskahd.config import Config
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


def same_file(st: os.stat_result, signature: Signature) -> bool:
    """Is ``st`` the file with ``signature``? The ctime is not compared: the claiming rename
    itself sets it. Inode, size and mtime are: a replacement is another inode, and any
    write to a file quiet for the settle time moves its mtime."""
    return (st.st_ino, st.st_size, st.st_mtime_ns) == (signature.ino, signature.size, signature.mtime_ns)


@dataclass(frozen=True)
class Claimed:
    """A source renamed into the holding folder and proved to be the file taken."""

    held: Path
    origin: Path


class Released:
    """What became of a claim: ``gone`` (nothing at the name), ``replaced`` (another file
    held the name; it is back in its place, or in review as ``moved_to_review``)."""

    def __init__(self, *, gone: bool = False, replaced: bool = False, moved_to_review: str | None = None) -> None:
        self.gone, self.replaced, self.moved_to_review = gone, replaced, moved_to_review


class Release:
    """Claims, removes and moves sources in the drop folder (used from the daemon's thread)."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def held_path(self, relpath: str) -> Path:
        return self.config.hold_dir / relpath

    def claim(self, relpath: str, signature: Signature) -> Claimed | Released:
        """Rename the source into the holding folder; a Claimed only if it is the file with
        ``signature``. OSError when it cannot be renamed (permissions, read-only)."""
        origin = self.config.drop / relpath
        held = self.held_path(relpath)
        try:
            durable.rename_noreplace(origin, held)
        except FileNotFoundError:
            # The source is gone, or the holding folder's subfolder is not there yet: that
            # one is made (durably) only when missing, not looked for at every claim.
            if held.parent.is_dir():
                return Released(gone=True)
            durable.makedirs(held.parent, mode=0o700)
            try:
                durable.rename_noreplace(origin, held)
            except FileNotFoundError:
                return Released(gone=True)
        # Nobody else writes in the holding folder: what is there now is what was renamed.
        # lstat: the entry itself, never a symlink's target (as an O_PATH|O_NOFOLLOW fstat).
        st = os.lstat(held)
        if same_file(st, signature):
            return Claimed(held, origin)
        return self.put_back(held, origin)

    def put_back(self, held: Path, origin: Path) -> Released:
        """Return a held file to its name, never overwriting; to review if the name is taken."""
        try:
            durable.makedirs(origin.parent)  # its folder may have been removed meanwhile
            durable.rename_noreplace(held, origin)
            return Released(replaced=True)
        except FileExistsError:
            # An exempt letter keeps its protection in review: apart, its name withheld, and
            # the only way back offered is into dikecualikan/ (status, review).
            folder = self.config.review_dir / DROP_FOLDER[EXEMPT] if self._exempt(origin) else self.config.review_dir
            moved = move_aside(held, folder, origin.name)
            return Released(replaced=True, moved_to_review=moved)

    def _exempt(self, origin: Path) -> bool:
        from naskahd.classify import classify

        rel = origin.relative_to(self.config.drop).as_posix()
        return rel.split("/", 1)[0] == DROP_FOLDER[EXEMPT] or classify(rel, self.config.rules) == EXEMPT

    def remove(self, relpath: str, signature: Signature) -> DocumentState | Released | OSError:
        """Step 4 for a filed scan: FILED once the very file taken is removed; a Released
        when the name holds no file or another one (the filed file is not there to remove:
        FILED too, the caller logs what happened); the OSError when it could not be removed
        (SOURCE_STUCK: the source stays in its place)."""
        try:
            claimed = self.claim(relpath, signature)
        except OSError as exc:
            return exc
        if isinstance(claimed, Released):
            return claimed
        try:
            os.unlink(claimed.held)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self.put_back(claimed.held, claimed.origin)
            return exc
        return DocumentState.FILED

    def move(self, relpath: str, signature: Signature, folder: Path) -> str | Released:
        """Move the very file taken into ``folder`` (duplicates, review); the name used there,
        or a Released when the name holds no file or another one. OSError: cannot move."""
        claimed = self.claim(relpath, signature)
        if isinstance(claimed, Released):
            return claimed
        try:
            return move_aside(claimed.held, folder, os.path.basename(relpath))
        except OSError:
            self.put_back(claimed.held, claimed.origin)
            raise

    def folders(self, relpaths: list[str]) -> set[Path]:
        """The folders whose entries ``remove``/``move`` changed for ``relpaths``, to fsync."""
        parents = {os.path.dirname(rel) for rel in relpaths}  # a Path per folder, not per file
        return {self.config.drop / p for p in parents} | {self.config.hold_dir / p for p in parents}
