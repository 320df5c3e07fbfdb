"""At start-up: finish or roll back whatever a crash left half-done (docs/architecture.md).

A STAGED row is finished from its temp file or, failing that, from its source; a
SOURCE_STUCK row gets its source removal tried again; a temp file no row refers to is an
orphan of a copy whose row was never committed (its source is still in the drop folder).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from naskahd import durable, naming
from naskahd.categories import EXEMPT
from naskahd.config import Config
from naskahd.filing.store import copy, sha256_file
from naskahd.i18n import _
from naskahd.log import get_logger
from naskahd.register import Document, DocumentState


class Reconciler:
    def __init__(self, config: Config, sessions: sessionmaker[Session], recipients: Sequence[Any]) -> None:
        self.config = config
        self.sessions = sessions
        self.recipients = recipients
        self.log = get_logger("filing")

    def source_path(self, relpath: str | bytes) -> Path:
        return self.config.drop / os.fsdecode(relpath)

    def reconcile(self) -> list[str]:
        """Finish or roll back whatever a crash left half-done. Returns problems for a person."""
        problems: list[str] = []
        with self.sessions() as session:
            rows = session.scalars(
                select(Document).where(Document.state.in_([DocumentState.STAGED, DocumentState.SOURCE_STUCK]))
            ).all()
        for doc in rows:
            outcome = self.finish(doc)
            if isinstance(outcome, str):
                problems.append(outcome)
        keep = {(self.config.archive / r.archive_path).parent / r.temp_name for r in rows if r.temp_name}
        for temp in self._temp_files():
            if temp not in keep:
                # A copy whose row was never committed: its source is still in the drop folder.
                with contextlib.suppress(FileNotFoundError):
                    temp.unlink()
                self.log.info("archive.temp_removed", path=str(temp.relative_to(self.config.archive)))
        return problems

    def _temp_files(self) -> list[Path]:
        found = []
        for dirpath, _dirs, files in os.walk(self.config.archive):
            found += [Path(dirpath) / f for f in files if f.startswith(durable.TEMP_PREFIX)]
        return found

    def _archive_ok(self, doc: Document, path: Path) -> bool:
        want = doc.ciphertext_sha256 if doc.category == EXEMPT else doc.sha256
        return path.is_file() and sha256_file(path) == want

    def finish(self, doc: Document) -> DocumentState | str:
        """Bring a STAGED or SOURCE_STUCK row to its end state; a problem for a person if it cannot."""
        try:
            outcome = self._finish_steps(doc)
        except OSError as exc:
            outcome = _("document {agenda}: cannot finish filing: {error}").format(agenda=doc.agenda, error=exc)
        if isinstance(outcome, str):
            self.log.error("document.reconcile_failed", agenda=doc.agenda, problem=outcome)
        return outcome

    def _finish_steps(self, doc: Document) -> DocumentState | str:
        final = self.config.archive / doc.archive_path
        source = self._find_source(doc)
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
                ).format(agenda=doc.agenda, name=naming.display_name(doc.source_relpath) if doc.source_relpath else naming.WITHHELD)
        elif not self._archive_ok(doc, final):
            return _("document {agenda}: the archive file {path} does not match the register; keep it and call for help").format(agenda=doc.agenda, path=doc.archive_path)
        state = DocumentState.FILED
        if source is not None:
            try:
                source.unlink()
                durable.fsync_dir(source.parent)
            except OSError:
                state = DocumentState.SOURCE_STUCK
        with self.sessions.begin() as session:
            row = session.get(Document, doc.id)
            assert row is not None
            row.state, row.temp_name = state, None
        self.log.info("document.reconciled", agenda=doc.agenda, state=state.value)
        return state

    def _find_source(self, doc: Document) -> Path | None:
        """The scan a row was made from, if it is still in the drop folder with the same content.

        Exempt rows do not record their path, so the exempt folders are searched by size
        and hash (a rare path: only after a crash).
        """
        if doc.source_relpath:
            candidates = [self.source_path(doc.source_relpath)]
        else:
            from naskahd import watch
            from naskahd.classify import classify

            candidates = [
                self.source_path(rel) for rel, st in watch.scan(self.config)
                if stat.S_ISREG(st.st_mode) and st.st_size == doc.size and classify(rel, self.config.rules) == EXEMPT
            ]
        for path in candidates:
            try:
                st = os.lstat(path)
                if stat.S_ISREG(st.st_mode) and st.st_size == doc.size and sha256_file(path) == doc.sha256:
                    return path
            except OSError:
                continue
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
                    if sealed.plaintext_sha256 != doc.sha256:
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
