"""The udev rule and systemd mount unit that mount a registered drive at
``/media/naskahd/NAME`` when it is plugged in (``nofail``: boot never waits for it).
naskahd never mounts drives itself; the hardened service only needs write access under
``/media/naskahd``. Pure.
"""

from __future__ import annotations

import re

MEDIA = "/media/naskahd"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
# udev's ID_FS_TYPE → mount's -t
_TYPES = {"ntfs": "ntfs-3g", "exfat": "exfat", "vfat": "vfat", "ext4": "ext4", "ext3": "ext3", "ext2": "ext2", "xfs": "xfs", "btrfs": "btrfs"}
_POSIX = {"ext4", "ext3", "ext2", "xfs", "btrfs"}


def escape_path(path: str) -> str:
    """``systemd-escape --path``: the unit name for a mount point."""
    out = []
    for i, ch in enumerate(path.strip("/")):
        if ch == "/":
            out.append("-")
        elif ch.isascii() and (ch.isalnum() or ch == "_" or (ch == "." and i > 0)):
            out.append(ch)
        else:
            out.extend(f"\\x{b:02x}" for b in ch.encode())
    return "".join(out)


def mountpoint(name: str) -> str:
    return f"{MEDIA}/{name}"


def mount_unit_name(name: str) -> str:
    return escape_path(mountpoint(name)) + ".mount"


def rule_name(name: str) -> str:
    return f"99-naskahd-{name}.rules"


def udev_rule(name: str, uuid: str) -> str:
    return (
        f"# naskahd backup drive {name}: mount it at {mountpoint(name)} when it is plugged in.\n"
        f"# Install: cp {rule_name(name)} /etc/udev/rules.d/ && udevadm control --reload\n"
        f'ACTION!="remove", SUBSYSTEM=="block", ENV{{ID_FS_UUID}}=="{uuid}", '
        f'TAG+="systemd", ENV{{SYSTEMD_WANTS}}+="{mount_unit_name(name)}"\n'
    )


def mount_unit(name: str, uuid: str, fstype: str | None) -> str:
    kind = _TYPES.get((fstype or "").lower(), "auto")
    options = "nofail,noatime,nodev,nosuid,noexec"
    if kind not in _POSIX and kind != "auto":
        # No owners on FAT/exFAT/NTFS: only the owner (root, or add uid=/gid= of naskahd's
        # service user here) may read the letters.
        options += ",umask=0077"
    return (
        f"# naskahd backup drive {name} (filesystem UUID {uuid}).\n"
        f"# Install: cp {mount_unit_name(name)} /etc/systemd/system/ && systemctl daemon-reload\n"
        "[Unit]\n"
        f"Description=naskahd backup drive {name}\n"
        "Documentation=man:naskahd(8)\n"
        "\n"
        "[Mount]\n"
        f"What=/dev/disk/by-uuid/{uuid}\n"
        f"Where={mountpoint(name)}\n"
        f"Type={kind}\n"
        f"Options={options}\n"
        "DirectoryMode=0750\n"
        "TimeoutSec=60\n"
    )
