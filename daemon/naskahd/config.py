"""Load and validate the TOML configuration; the embedded default.

Found by ``--config PATH``, else ``$NASKAHD_CONFIG``, else ``/etc/naskahd/naskahd.toml``;
with none present, the embedded default (``default.toml`` beside this module) rooted at
``./naskahd-data``. Every refusal names the file, the key, the value and the reason;
unknown keys are errors, never silently ignored.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from naskahd.categories import CATEGORIES
from naskahd.errors import ConfigError
from naskahd.i18n import _

SYSTEM_CONFIG = Path("/etc/naskahd/naskahd.toml")
DEFAULT_TOML = Path(__file__).with_name("default.toml")
DEFAULT_ROOT = Path("naskahd-data")
WATCH_MODES = ("auto", "inotify", "polling")
SIFAT = ("biasa", "segera", "sangat segera")  # a letter's urgency ([letters] sifat), as agenda books write it
SIFAT_MAX = 32

# Folders inside the drop folder that naskahd itself fills; never classified.
REVIEW_FOLDER = "tinjau"  # files a person must look at (no rule matched, incomplete, ...)
DUPLICATES_FOLDER = "duplikat"  # files whose content is already registered
# naskahd's private holding folder: a source is renamed here before it is removed or moved,
# so that it can be proved to be the very file filed (filing/release.py). On the drop
# filesystem, so exempt plaintext never leaves it; never shown on the Samba share.
HOLD_FOLDER = ".naskahd-hold"
# An installation's marker in each root and, in the drop and archive roots, who holds them
# (installation.py). Never taken as scans.
ROOT_MARKER = ".naskahd-root"
ROOT_OWNER = ".naskahd-owner"
INTERNAL_NAMES = frozenset({REVIEW_FOLDER, DUPLICATES_FOLDER, HOLD_FOLDER, ROOT_MARKER, ROOT_OWNER})


@dataclass(frozen=True)
class Rule:
    category: str
    path: str | None = None  # fnmatch glob on the drop-relative POSIX path ('*' crosses '/')
    name: re.Pattern[str] | None = None  # regular expression searched in the file name


@dataclass(frozen=True)
class Config:
    source: str
    drop: Path
    archive: Path
    state: Path
    office_name: str
    timezone: ZoneInfo
    office_place: str = ""  # where reports are signed ("Tuapejat, 1 Desember 2026")
    watch_mode: str = "auto"
    settle_seconds: float = 2.0
    incomplete_after_seconds: float = 600.0
    rescan_seconds: float = 60.0
    content_check: bool = True  # issue 8: PDF/JPEG/PNG/TIFF must be complete, not only quiet
    ignore: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    recipients: tuple[str, ...] = ()
    embedded: bool = False
    backup_max_age_days: float = 7.0  # status: a problem when the newest verified backup is older
    eject_after_sync: bool = False  # udisksctl unmount + power-off after a verified sync
    # [web] (issue 21): where `naskahd web` listens; a non-loopback address needs HTTPS.
    web_listen: str = "127.0.0.1:8080"
    web_certificate: Path | None = None  # the office's own certificate (PEM); else the state folder's
    web_key: Path | None = None
    web_idle_minutes: float = 30.0
    sifat: tuple[str, ...] = SIFAT  # issue 21: the choices of a letter's sifat, in order
    # The recipients as the age module parsed them, or the reason none are usable.
    recipient_problem: str | None = field(default=None, compare=False)

    @property
    def register_path(self) -> Path:
        return self.state / "register.sqlite3"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.register_path}"

    @functools.cached_property  # asked per file: one Path, not one per call
    def review_dir(self) -> Path:
        return self.drop / REVIEW_FOLDER

    @functools.cached_property  # asked per file: one Path, not one per call
    def duplicates_dir(self) -> Path:
        return self.drop / DUPLICATES_FOLDER

    @functools.cached_property  # asked per file: one Path, not one per call
    def hold_dir(self) -> Path:
        return self.drop / HOLD_FOLDER

    def withheld(self, text: str) -> str:
        """``text`` with exempt letters' names withheld (naming.scrub), for logs and status."""
        from naskahd import naming
        from naskahd.categories import DROP_FOLDER, EXEMPT

        exempt = DROP_FOLDER[EXEMPT]
        folders = (f"{HOLD_FOLDER}/{exempt}", f"{REVIEW_FOLDER}/{exempt}", exempt)
        return naming.scrub(text, str(self.drop), folders)


def locate(explicit: str | None) -> Path | None:
    """The configuration file to read, or None for the embedded default."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("NASKAHD_CONFIG")
    if env:
        return Path(env)
    if SYSTEM_CONFIG.exists():
        return SYSTEM_CONFIG
    return None


def load(explicit: str | None = None) -> Config:
    path = locate(explicit)
    if path is None:
        data = tomllib.loads(DEFAULT_TOML.read_text(encoding="utf-8"))
        return parse(data, source="<embedded default>", base=DEFAULT_ROOT.resolve(), embedded=True)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            _("the file does not exist; run 'naskahd init --root DIR' or give --config"),
            source=str(path), key="--config", value=str(path),
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(_("the file is not UTF-8 text (byte {offset}); save it as UTF-8").format(offset=exc.start),
                          source=str(path)) from None
    except OSError as exc:
        from naskahd.oserrors import describe

        raise ConfigError(_("cannot read it: {error}").format(error=describe(exc, path)), source=str(path)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(toml_problem(exc), source=str(path)) from None
    return parse(data, source=str(path), base=path.resolve().parent)


def toml_problem(exc: tomllib.TOMLDecodeError) -> str:
    """``not valid TOML at line 3, column 7: Expected '=' ...``: where to look first."""
    text = str(exc)
    found = re.search(r"\s*\(at line (\d+), column (\d+)\)$", text)
    if found is None:
        found_end = re.search(r"\s*\(at end of document\)$", text)
        detail = text[: found_end.start()] if found_end else text
        return _("not valid TOML at the end of the file: {error}").format(error=detail)
    return _("not valid TOML at line {line}, column {column}: {error}").format(
        line=found.group(1), column=found.group(2), error=text[: found.start()])


class _Reader:
    """Takes keys out of one TOML table, so that whatever is left over is an unknown key."""

    def __init__(self, source: str, prefix: str, table: Any) -> None:
        self.source, self.prefix = source, prefix
        if not isinstance(table, dict):
            self.fail(prefix, table, _("must be a section such as [watch], not a single value"))
        self.table = dict(table)

    def fail(self, key: str, value: object, reason: str) -> None:
        raise ConfigError(reason, source=self.source, key=key, value=value)

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def take(self, name: str, kind: type | tuple[type, ...], default: Any) -> Any:
        if name not in self.table:
            return default
        value = self.table.pop(name)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            self.fail(self.key(name), value, _expected(kind, default))
        return value

    def take_str_list(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.take(name, list, None)
        if value is None:
            return default
        for item in value:
            if not isinstance(item, str):
                self.fail(self.key(name), value, _("must be a list of strings"))
        return tuple(value)

    def finish(self) -> None:
        for name, value in self.table.items():
            self.fail(self.key(name), value, _("unknown key (check its spelling)"))


def _expected(kind: type | tuple[type, ...], default: Any) -> str:
    """What a value of ``kind`` looks like, in plain words, with an example."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds:
        return _("must be a number such as {example}").format(example=default if default is not None else 2.5)
    if int in kinds:
        return _("must be a whole number such as {example}").format(example=default if default is not None else 60)
    if bool in kinds:
        return _("must be true or false (without quotes)")
    if str in kinds:
        return _("must be text in double quotes, such as \"{example}\"").format(example=default or "drop")
    if list in kinds:
        return _("must be a list in square brackets, such as [\"a\", \"b\"]")
    if dict in kinds:
        return _("must be a section such as [watch], not a single value")
    return _("has the wrong kind of value")


def _positive(r: _Reader, name: str, default: float) -> float:
    value = float(r.take(name, (int, float), default))
    if not value > 0:
        r.fail(r.key(name), value, _("must be greater than zero"))
    return value


def parse(data: dict[str, Any], *, source: str, base: Path, embedded: bool = False) -> Config:
    top = _Reader(source, "", data)
    paths = _Reader(source, "paths", top.take("paths", dict, {}))
    drop = base / paths.take("drop", str, "drop")
    archive = base / paths.take("archive", str, "archive")
    state = base / paths.take("state", str, "state")
    paths.finish()
    folders = {"paths.drop": drop, "paths.archive": archive, "paths.state": state}
    for key_a, a in folders.items():
        for key_b, b in folders.items():
            if key_a >= key_b:
                continue
            if a == b:
                top.fail(key_b, str(b), _("must not be the same folder as {other}").format(other=key_a))
            # Stated the right way round: the one inside is the one named.
            inner, outer = (key_a, key_b) if b in a.parents else (key_b, key_a) if a in b.parents else (None, None)
            if inner is not None:
                top.fail(inner, str(folders[inner]), _("must not be inside {other} ({path})").format(
                    other=outer, path=folders[outer]))

    office = _Reader(source, "office", top.take("office", dict, {}))
    office_name = office.take("name", str, "")
    office_place = office.take("place", str, "")
    tz_name = office.take("timezone", str, "Asia/Jakarta")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        office.fail("office.timezone", tz_name, _("unknown timezone (use an IANA name such as Asia/Jakarta)"))
    office.finish()

    watch = _Reader(source, "watch", top.take("watch", dict, {}))
    mode = watch.take("mode", str, "auto")
    if mode not in WATCH_MODES:
        watch.fail("watch.mode", mode, _("must be one of: {choices}").format(choices=", ".join(WATCH_MODES)))
    settle = _positive(watch, "settle_seconds", 2.0)
    incomplete_after = _positive(watch, "incomplete_after_seconds", 600.0)
    rescan = _positive(watch, "rescan_seconds", 60.0)
    content_check = watch.take("content_check", bool, True)
    default_ignore = tomllib.loads(DEFAULT_TOML.read_text(encoding="utf-8"))["watch"]["ignore"]
    ignore = watch.take_str_list("ignore", tuple(default_ignore))
    watch.finish()

    enc = _Reader(source, "encryption", top.take("encryption", dict, {}))
    recipients = enc.take_str_list("recipients", ())
    enc.finish()
    for i, text in enumerate(recipients):
        _check_recipient(enc, f"encryption.recipients[{i}]", text)

    backup = _Reader(source, "backup", top.take("backup", dict, {}))
    max_age = _positive(backup, "max_age_days", 7.0)
    backup.finish()
    drives = _Reader(source, "drives", top.take("drives", dict, {}))
    eject = drives.take("eject_after_sync", bool, False)
    drives.finish()
    web = _Reader(source, "web", top.take("web", dict, {}))
    web_listen = web.take("listen", str, "127.0.0.1:8080")
    if _listen_problem(web_listen):
        web.fail("web.listen", web_listen, _listen_problem(web_listen))
    web_cert = web.take("certificate", str, "")
    web_key = web.take("key", str, "")
    if bool(web_cert) != bool(web_key):
        web.fail("web.key" if web_cert else "web.certificate", web_key or web_cert,
                 _("give both [web] certificate and key, or neither (then the state folder's own is used)"))
    web_idle = _positive(web, "idle_minutes", 30.0)
    web.finish()

    letters = _Reader(source, "letters", top.take("letters", dict, {}))
    sifat = letters.take_str_list("sifat", SIFAT)
    letters.finish()
    _check_sifat(letters, sifat)

    raw_rules = top.take("rules", list, None)
    rules = _parse_rules(top, raw_rules) if raw_rules is not None else _default_rules()
    top.finish()

    return Config(
        source=source, drop=drop, archive=archive, state=state,
        office_name=office_name, office_place=office_place, timezone=tz, watch_mode=mode, settle_seconds=settle,
        incomplete_after_seconds=incomplete_after, rescan_seconds=rescan, content_check=content_check, ignore=ignore,
        rules=rules, recipients=recipients, embedded=embedded, backup_max_age_days=max_age, eject_after_sync=eject,
        web_listen=web_listen, web_certificate=base / web_cert if web_cert else None,
        web_key=base / web_key if web_key else None, web_idle_minutes=web_idle,
        sifat=tuple(" ".join(v.split()) for v in sifat),
        recipient_problem=None if recipients else _(
            "no encryption recipient is configured ([encryption] recipients): exempt scans wait "
            "in the drop folder; add the officer's age1... public key and reload"
        ),
    )


def split_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) as (host, port); ValueError when it is not one."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ValueError(text)
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen_problem(text: str) -> str | None:
    try:
        split_listen(text)
    except ValueError:
        return _("must be HOST:PORT, such as \"127.0.0.1:8080\" or \"192.168.1.10:8443\"")
    return None
def _check_sifat(r: _Reader, sifat: tuple[str, ...]) -> None:
    if not sifat:
        r.fail("letters.sifat", list(sifat), _("must list at least one choice, such as [\"biasa\", \"segera\", \"sangat segera\"]"))
    seen: set[str] = set()
    for value in sifat:
        text = " ".join(value.split())
        if not text or len(text) > SIFAT_MAX or any(ord(c) < 32 or ord(c) == 127 for c in value):
            r.fail("letters.sifat", list(sifat), _("each choice must be plain text of 1 to {n} characters").format(n=SIFAT_MAX))
        if text.casefold() in seen:
            r.fail("letters.sifat", list(sifat), _("{value!r} is listed twice").format(value=text))
        seen.add(text.casefold())


def _check_recipient(r: _Reader, key: str, text: str) -> None:
    from naskahd import recipients  # imports the age module late, for start-up RSS

    why = recipients.problem(text)
    if why is not None:
        r.fail(key, recipients.shown(text), why)  # a secret key is never echoed back


def _parse_rules(top: _Reader, raw: list[Any]) -> tuple[Rule, ...]:
    rules = []
    for i, item in enumerate(raw):
        r = _Reader(top.source, f"rules[{i}]", item)
        category = r.take("category", str, None)
        if category is None:
            r.fail(r.key("category"), "", _("every rule needs a category"))
        if category not in CATEGORIES:
            r.fail(r.key("category"), category, _("must be one of: {choices}").format(choices=", ".join(CATEGORIES)))
        path = r.take("path", str, None)
        name_text = r.take("name", str, None)
        if path is None and name_text is None:
            r.fail(r.key("path"), "", _("a rule needs 'path', 'name' or both"))
        name = None
        if name_text is not None:
            try:
                name = re.compile(name_text)
            except re.error as exc:
                r.fail(r.key("name"), name_text, _("not a valid regular expression: {error}").format(error=exc))
        r.finish()
        rules.append(Rule(category=category, path=path, name=name))
    return tuple(rules)


def _default_rules() -> tuple[Rule, ...]:
    data = tomllib.loads(DEFAULT_TOML.read_text(encoding="utf-8"))
    return tuple(Rule(category=r["category"], path=r.get("path")) for r in data["rules"])


def render_toml(root: Path, recipients: list[str]) -> str:
    """The configuration ``naskahd init`` writes: the embedded default, paths absolute."""
    text = DEFAULT_TOML.read_text(encoding="utf-8")
    for key in ("drop", "archive", "state"):
        line = f"{key} = {json.dumps(str(root / key))}"
        text = re.sub(rf'^{key} = "{key}"', lambda _m, line=line: line, text, count=1, flags=re.M)
    line = f"recipients = {json.dumps(list(recipients))}"
    return re.sub(r"^recipients = \[\]", lambda _m: line, text, count=1, flags=re.M)
