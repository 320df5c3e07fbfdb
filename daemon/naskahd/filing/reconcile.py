"""At start-up: finish or roll back whatever a crash left half-done (docs/architecture.md).

In this order:
1. A file left in the holding folder (a crash between claiming a source and removing or
   moving it, release.py) is compared with the unfinished rows (a row is marked FILED only
   after the holding folder's removal is durable): one that is proved, by its path, size
   and SHA-256, to be the source of such a row stays there for step 2, which finishes
   that row and removes it. Any other goes back to its name (to review if a new file took
   the name meanwhile), and the catch-up scan looks at it again.
2. A STAGED row is finished from its temp file or, failing that, from its source (in the
   holding folder or the drop folder); a SOURCE_STUCK row gets its source removal tried
   again. What a row's end state relies on
   is made durable before the source is touched: a final name that is visible may not be
   on the disk yet (a SIGKILL between the rename and its folder's fsync), so the folder is
   fsynced first.
3. A temp file no row refers to is an orphan of a copy whose row was never committed (its
   source is still in the drop folder), and is removed, unless its content is that of a
   registered document whose final file is missing (a power cut undid the final name of a
   row already FILED): then it becomes that final file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from naskahd import durable, naming
from naskahd.categories import DROP_FOLDER, EXEMPT
from naskahd.config import Config
from naskahd.filing.keys import PATH_TAG, ExemptKeys
from naskahd.filing.release import Release
from naskahd.filing.store import copy, sha256_file
from naskahd.i18n import _
from naskahd.log import get_logger
from naskahd.register import Document, DocumentState
from naskahd.settle import Signature


class Reconciler:
    def __init__(
        self, config: Config, sessions: sessionmaker[Session], recipients: Sequence[Any], keys: ExemptKeys, release: Release,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.recipients = recipients
        self.keys = keys
        self.release = release
        self.log = get_logger("filing")

    def source_path(self, relpath: str | bytes) -> Path:
        return self.config.drop / os.fsdecode(relpath)

    def reconcile(self) -> list[str]:
        """Finish or roll back whatever a crash left half-done. Returns problems for a person."""
        with self.sessions() as session:
            rows = session.scalars(
                select(Document).where(Document.state.in_([DocumentState.STAGED, DocumentState.SOURCE_STUCK]))
            ).all()
        held, problems = self._return_held(rows)
        for doc in rows:
            outcome = self.finish(doc, held.get(doc.id))
            if isinstance(outcome, str):
                problems.append(outcome)
                if doc.id in held:  # not finished: its source goes back, never lost
                    problems += self._put_back(held[doc.id])
        keep = {(self.config.archive / r.archive_path).parent / r.temp_name for r in rows if r.temp_name}
        orphans = [temp for temp in self._temp_files() if temp not in keep]
        for temp in self._complete_finals(orphans):
            # A copy whose row was never committed: its source is still in the drop folder.
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            self.log.info("archive.temp_removed", path=str(temp.relative_to(self.config.archive)))
        return problems

    def _return_held(self, rows: Sequence[Document]) -> tuple[dict[int, Path], list[str]]:
        """Step 1: the held sources of unfinished rows, by row id, stay for step 2; every
        other held file goes back under its name (or to review). One that cannot be moved
        stays there (never lost), and is a problem for a person."""
        sources: dict[int, Path] = {}
        problems: list[str] = []
        for dirpath, _dirs, files in os.walk(self.config.hold_dir):
            for name in files:
                held = Path(dirpath) / name
                doc = self._unfinished_source_of(held, [r for r in rows if r.id not in sources])
                if doc is not None:
                    sources[doc.id] = held
                    self.log.info("document.held_source", agenda=doc.agenda)
                else:
                    problems += self._put_back(held)
        return sources, problems

    def _put_back(self, held: Path) -> list[str]:
        rel = held.relative_to(self.config.hold_dir).as_posix()
        shown = naming.shown_relpath(rel, exempt=self._exempt_path(rel))
        try:
            released = self.release.put_back(held, self.config.drop / rel)
        except OSError as exc:
            self.log.error("document.return_failed", path=shown, error=exc.strerror)
            return [self.config.withheld(_("{path} waits in {folder} and cannot be put back: {error}; move it back by hand").format(
                path=shown, folder=self.config.hold_dir, error=exc.strerror))]
        self.log.info("document.returned", path=shown, moved_to_review=bool(released.moved_to_review))
        return []

    def _unfinished_source_of(self, held: Path, rows: Sequence[Document]) -> Document | None:
        """The unfinished row ``held`` is the source of: same drop path (exempt rows: its
        keyed tag), same size, same content. Nobody else writes in the holding folder, so
        the file hashed here is the file step 2 removes."""
        rel = held.relative_to(self.config.hold_dir).as_posix()
        try:
            st = os.lstat(held)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        candidates = [d for d in rows if d.size == st.st_size and self._may_be_source(d, rel)]
        if not candidates:
            return None
        try:
            digest = sha256_file(held)
        except OSError:
            return None
        for d in candidates:
            if (self.keys.matches(d.sha256, digest) if d.category == EXEMPT else digest == d.sha256):
                return d
        return None

    def _may_be_source(self, doc: Document, rel: str) -> bool:
        if doc.category != EXEMPT:
            return os.fsdecode(doc.source_relpath) == rel
        return self._exempt_path(rel) and (not doc.source_relpath.startswith(PATH_TAG) or self.keys.path(rel) == doc.source_relpath)

    def _exempt_path(self, rel: str) -> bool:
        from naskahd.classify import classify

        return rel.split("/", 1)[0] == DROP_FOLDER[EXEMPT] or classify(rel, self.config.rules) == EXEMPT

    def _complete_finals(self, orphans: list[Path]) -> list[Path]:
        """Step 3: orphans holding a registered document whose final file is missing become
        that file; returns the other orphans. Only the documents of the orphans' folders,
        and of their sizes, are looked at: cheap even with a large register."""
        rest: list[Path] = []
        by_folder: dict[Path, list[Path]] = {}
        for temp in orphans:
            by_folder.setdefault(temp.parent, []).append(temp)
        for folder, temps in by_folder.items():
            prefix = folder.relative_to(self.config.archive).as_posix() + "/"
            with self.sessions() as session:
                docs = session.scalars(select(Document).where(Document.archive_path.startswith(prefix, autoescape=True))).all()
            by_size: dict[int, list[Document]] = {}
            for d in docs:
                by_size.setdefault(d.ciphertext_size if d.category == EXEMPT else d.size, []).append(d)
            for temp in temps:
                doc = self._missing_final_of(temp, by_size)
                if doc is None:
                    rest.append(temp)
                    continue
                final = self.config.archive / doc.archive_path
                durable.rename_noreplace(temp, final)
                durable.fsync_dir(final.parent)
                self.log.warning("document.final_restored", agenda=doc.agenda, archive_path=doc.archive_path)
        return rest

    def _missing_final_of(self, temp: Path, by_size: dict[int, list[Document]]) -> Document | None:
        try:
            size = temp.stat().st_size
        except FileNotFoundError:
            return None
        candidates = [d for d in by_size.get(size, []) if not (self.config.archive / d.archive_path).exists()]
        if not candidates:
            return None
        digest = sha256_file(temp)
        for d in candidates:
            if digest == (d.ciphertext_sha256 if d.category == EXEMPT else d.sha256):
                return d
        return None

    def _temp_files(self) -> list[Path]:
        found = []
        for dirpath, _dirs, files in os.walk(self.config.archive):
            found += [Path(dirpath) / f for f in files if f.startswith(durable.TEMP_PREFIX)]
        return found

    def _archive_ok(self, doc: Document, path: Path) -> bool:
        want = doc.ciphertext_sha256 if doc.category == EXEMPT else doc.sha256
        return path.is_file() and sha256_file(path) == want

    def finish(self, doc: Document, held: Path | None = None) -> DocumentState | str:
        """Bring a STAGED or SOURCE_STUCK row to its end state; a problem for a person if it
        cannot. ``held``: its source, proved in step 1, waiting in the holding folder."""
        try:
            outcome = self._finish_steps(doc, held)
        except OSError as exc:
            outcome = _("document {agenda}: cannot finish filing: {error}").format(agenda=doc.agenda, error=exc)
        if isinstance(outcome, str):
            outcome = self.config.withheld(outcome)  # an OSError's text carries the source's path
            self.log.error("document.reconcile_failed", agenda=doc.agenda, problem=outcome)
        return outcome

    def _finish_steps(self, doc: Document, held: Path | None) -> DocumentState | str:
        final = self.config.archive / doc.archive_path
        found = self._find_source(doc) if held is None else None
        source = held if held is not None else self.source_path(found[0]) if found is not None else None
        if not final.exists():
            temp = final.parent / doc.temp_name if doc.temp_name else None
            if temp is not None and temp.exists() and self._archive_ok(doc, temp):
                durable.rename_noreplace(temp, final)
                durable.fsync_dir(final.parent)
            elif source is not None:
                self._restore_from_source(doc, source, final)
            else:
                return _(
                    "document {agenda}: its archive copy is missing and its source is gone; "
                    "look for {name} and drop it again"
                ).format(agenda=doc.agenda, name=naming.WITHHELD if doc.category == EXEMPT else naming.display_name(doc.source_relpath))
        elif not self._archive_ok(doc, final):
            return _("document {agenda}: the archive file {path} does not match the register; keep it and call for help").format(agenda=doc.agenda, path=doc.archive_path)
        else:
            # Visible is not durable: a SIGKILL between the rename and its folder's fsync
            # leaves a name a power cut can still undo. Make it durable before the source
            # goes and the row says FILED.
            durable.fsync_dir(final.parent)
        state = DocumentState.FILED
        if held is not None:
            state = self._remove_held(held, doc)
        elif found is not None:
            rel, signature = found
            outcome = self.release.remove(rel, signature)
            if isinstance(outcome, OSError):
                state = DocumentState.SOURCE_STUCK
            for folder in self.release.folders([rel]):
                with contextlib.suppress(OSError):
                    durable.fsync_dir(folder)
        with self.sessions.begin() as session:
            row = session.get(Document, doc.id)
            assert row is not None
            row.state, row.temp_name = state, None
        self.log.info("document.reconciled", agenda=doc.agenda, state=state.value)
        return state

    def _remove_held(self, held: Path, doc: Document) -> DocumentState:
        """Step 4 for a source proved in step 1: it is already out of the drop folder, so
        only its removal, and both folders' entries, are made durable."""
        try:
            os.unlink(held)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self.log.warning("document.source_stuck", agenda=doc.agenda, error=exc.strerror)
            return DocumentState.SOURCE_STUCK  # still held; the next start-up tries again
        rel = held.relative_to(self.config.hold_dir).as_posix()
        for folder in self.release.folders([rel]):
            with contextlib.suppress(OSError):
                durable.fsync_dir(folder)
        return DocumentState.FILED

    def _find_source(self, doc: Document) -> tuple[str, Signature] | None:
        """The scan a row was made from, if it is still in the drop folder with the same
        content: its drop-relative path and the signature it had when it was hashed.

        Exempt rows record only a keyed tag of their path (keys.py), so the exempt folders
        are searched for the path with that tag (rows from before: by size and content; a
        rare path, only after a crash).
        """
        exempt = doc.category == EXEMPT
        if not exempt:
            candidates = [os.fsdecode(doc.source_relpath)]
        else:
            from naskahd import watch

            candidates = [
                rel for rel, st in watch.scan(self.config)
                if stat.S_ISREG(st.st_mode) and st.st_size == doc.size and self._exempt_path(rel)
                and (not doc.source_relpath.startswith(PATH_TAG) or self.keys.path(rel) == doc.source_relpath)
            ]
        for rel in candidates:
            try:
                st = os.lstat(self.source_path(rel))
                if not stat.S_ISREG(st.st_mode) or st.st_size != doc.size:
                    continue
                digest = sha256_file(self.source_path(rel))
            except OSError:
                continue
            if (self.keys.matches(doc.sha256, digest) if exempt else digest == doc.sha256):
                return rel, Signature.of(st)
        return None

    def _restore_from_source(self, doc: Document, source: Path, final: Path) -> None:
        """Redo step 1 from the source for a committed row whose temp file was lost."""
        durable.makedirs(final.parent)
        staged = durable.Staged(final.parent)
        try:
            with open(source, "rb") as src:
                if doc.category == EXEMPT:
                    from naskahd import age

                    sealed = age.encrypt_stream(src, staged.file, self.recipients)
                    staged.sync()
                    with open(staged.path, "rb") as check:
                        age.verify_sealed(check, sealed)
                    if sealed.plaintext_sha256 is None or not self.keys.matches(doc.sha256, sealed.plaintext_sha256):
                        raise OSError(errno.EIO, "source changed during reconciliation")
                    with self.sessions.begin() as session:
                        row = session.get(Document, doc.id)
                        assert row is not None
                        row.ciphertext_sha256, row.ciphertext_size = sealed.ciphertext_sha256, sealed.ciphertext_size
                        row.recipients = json.dumps(list(sealed.recipients))
                    doc.ciphertext_sha256 = sealed.ciphertext_sha256
                else:
                    sha, _size = copy(src, staged.file)
                    if sha != doc.sha256:
                        raise OSError(errno.EIO, "source changed during reconciliation")
            staged.publish(final)
        except BaseException:
            staged.discard()
            raise
