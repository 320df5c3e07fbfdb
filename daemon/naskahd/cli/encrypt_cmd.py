"""``naskahd encrypt FILE... -r RECIPIENT [-r ...] [-o OUT | --output-dir DIR]``.

Writes standard age files (``FILE.age`` by default) through a durable temp file: a
crash or an error leaves no partial output, and an existing file is never overwritten.
Imports stay minimal (no register, no SQLAlchemy) and ``naskahd.age`` is imported only in
``run``: this runs on multi-GB files and its memory use should be the encryptor's, not the
daemon's. ``naskahd.cli`` builds only this command's parser when the command line
names it, so the other command modules are not imported either.

Speed (issue 3, ``bench/bench_age.py``): no SHA-256 is computed (``digests=False``: the
command prints and stores no digest), the input is read with ``readinto`` into reused
buffers and encrypted in 1 MiB batches (half of each on a helper thread: ``encrypt_into``
releases the GIL), the output is written in 256 KiB writes while
the next batch is encrypted, and the kernel is asked to start writing it to the disk as
it is produced (:class:`_Writeback`), so that the one fsync at the end (durable: temp
file, fsync, no-replace rename, fsync of the folder) has little left to do.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from naskahd.errors import NaskahdError, UsageError
from naskahd.i18n import _
from naskahd.oserrors import reason


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("encrypt", help=_("encrypt files to age recipients (FILE -> FILE.age)"))
    p.add_argument("files", nargs="+", metavar="FILE", help=_("file to encrypt"))
    p.add_argument("-r", "--recipient", action="append", required=True, metavar="AGE1...",
                   help=_("age recipient (public key); repeatable"))
    out = p.add_mutually_exclusive_group()
    out.add_argument("-o", "--output", metavar="OUT", help=_("output file (only with one FILE)"))
    out.add_argument("--output-dir", metavar="DIR", help=_("write FILE.age files into DIR"))
    p.set_defaults(func=run)


def _targets(args: argparse.Namespace) -> list[tuple[Path, Path]]:
    sources = [Path(f) for f in args.files]
    if args.output and len(sources) != 1:
        raise UsageError(_("-o takes one input file; use --output-dir for several"))
    if args.output:
        targets = [Path(args.output)]
    elif args.output_dir:
        directory = Path(args.output_dir)
        if not directory.is_dir():
            raise NaskahdError(_("the output folder {path} does not exist").format(path=directory))
        targets = [directory / (s.name + ".age") for s in sources]
    else:
        targets = [s.with_name(s.name + ".age") for s in sources]
    seen: set[Path] = set()
    for target in targets:
        if target.exists() or target.is_symlink():
            raise NaskahdError(_("{path} already exists; refusing to overwrite it").format(path=target))
        if target.resolve() in seen:
            raise UsageError(_("two inputs would be written to {path}").format(path=target))
        seen.add(target.resolve())
    return list(zip(sources, targets, strict=True))


class _Writeback:
    """A write-only view of an unbuffered file: 256 KiB writes, disk writes started early.

    The encryptor hands over 1 MiB batches; they are written in ``PIECE`` pieces. On the
    benchmark machine 1 MiB writes were bimodal (every other run about 0.3 s slower per
    512 MiB, all of it in the kernel copying into the page cache), 256 KiB ones were not
    and were as fast as the good 1 MiB runs (docs/benchmarks-age.md).

    After each ``WINDOW`` bytes it calls ``sync_file_range(SYNC_FILE_RANGE_WRITE)`` on
    them (Linux): the kernel starts writing those pages out and returns without waiting.
    Otherwise the whole output sits dirty in the page cache until the final fsync, which
    then writes all of it while nothing else happens (about 0.2 s per 512 MiB on the
    benchmark machine). This is only a hint, like RocksDB's ``bytes_per_sync``: the fsync
    in naskahd.durable still makes the file durable and reports any I/O error, so if the
    call is missing or fails it is simply not used again.
    """

    PIECE = 256 << 10
    WINDOW = 8 << 20

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._fd = file.fileno()
        self._written = 0
        self._started = 0  # bytes before this offset have been handed to writeback
        from naskahd import durable

        # None once the kernel refuses the hint.
        self._start_writeback: Callable[[int, int, int], bool] | None = durable.start_writeback

    def write(self, data: bytes | memoryview) -> int:
        """Write all of ``data`` (short writes are retried here); returns its length."""
        view = memoryview(data)
        done = 0
        while done < len(view):
            n = self._file.write(view[done : done + self.PIECE])
            if n is None:  # the durable temp file is unbuffered and blocking: not expected
                raise BlockingIOError("the output file would block")
            done += n
        self._written += done
        if self._start_writeback is not None and self._written - self._started >= self.WINDOW:
            if not self._start_writeback(self._fd, self._started, self._written - self._started):
                self._start_writeback = None
            self._started = self._written
        return done


def run(args: argparse.Namespace) -> int:
    from naskahd import age, durable

    from naskahd.recipients import parse_all

    recipients = parse_all(args.recipient)  # a bad -r is a bad argument (exit 2)
    for source, target in _targets(args):
        try:
            src = open(source, "rb", buffering=0)  # unbuffered: readinto fills our buffers directly
        except OSError as exc:
            raise NaskahdError(_("cannot read {path}: {error}").format(path=source, error=reason(exc))) from None
        try:
            with src, durable.create(target) as dst:
                # No digests: nothing here uses them, and they cost two passes over the data.
                age.encrypt_stream(src, _Writeback(dst), recipients, digests=False)
        except FileExistsError:
            raise NaskahdError(_("{path} already exists; refusing to overwrite it").format(path=target)) from None
        except OSError as exc:
            raise NaskahdError(
                _("cannot encrypt {path} to {target}: {error}; nothing was written").format(
                    path=source, target=target, error=reason(exc))
            ) from None
        print(target)
    return 0
