"""Backup to registered external drives (SOP steps 6 and 7), one module per job.

- ``token``: the identity token written onto a registered drive, keyed by the host secret
- ``names``: file names the drive's filesystem accepts (NTFS, exFAT, FAT32), pure
- ``plan``: what a drive lacks, from the register alone (never by walking the drive)
- ``mounts``: ``/proc/self/mountinfo``, and which registered drive is mounted where
- ``copy``: copying a batch onto the drive (temp, fsync, rename, syncfs) and reading it back
- ``layout``: ``naskah/`` and ``naskah/.naskahd/`` (token, manifest, register snapshot)
- ``sync``: one sync of one drive, under its lock; ``monitor``: udev events, the daemon's thread
"""
