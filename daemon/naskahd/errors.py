"""The error hierarchy: every refusal says what was wrong and what to do.

Each class carries a user-facing message template and an exit code; one handler in
``naskahd.cli.main`` turns any of them into a message on stderr and an exit status.
Configuration errors have their own code so systemd's ``RestartPreventExitStatus=``
stops a restart loop on a broken configuration.
"""

from __future__ import annotations

from naskahd.i18n import N_, _

# Exit codes (documented in README; tests/test_exit_codes.py pins them).
EXIT_OK = 0
EXIT_ATTENTION = 1  # generic failure, or `status`: something needs a person
EXIT_USAGE = 2  # argparse's own code for bad command lines
EXIT_NOT_RUNNING = 3  # `status`: the daemon is not running
EXIT_CRYPTO = 4  # an age file could not be decrypted / verified
EXIT_CONFIG = 78  # EX_CONFIG from sysexits.h


class NaskahdError(Exception):
    """Base of every error meant for a person. ``message`` is a template."""

    message = N_("{detail}")
    exit_code = EXIT_ATTENTION

    def __init__(self, detail: str = "", **kwargs: object) -> None:
        self.kwargs = dict(kwargs, detail=detail)
        super().__init__(self.render())

    def render(self) -> str:
        return _(self.message).format(**self.kwargs)


class UsageError(NaskahdError):
    exit_code = EXIT_USAGE


class ConfigError(NaskahdError):
    """The configuration is invalid: names the file, the key, the value and the reason."""

    message = N_("configuration error in {source}: {key} = {value}: {detail}")
    # An error in the file as a whole (it cannot be read, it is not TOML): no key, no value.
    file_message = N_("configuration error in {source}: {detail}")
    # A key that is missing (no value to show).
    key_message = N_("configuration error in {source}: {key}: {detail}")
    exit_code = EXIT_CONFIG

    def __init__(self, detail: str, *, source: str, key: str | None = None, value: object = "") -> None:
        super().__init__(detail, source=source, key=key, value=repr(value) if value != "" else None)

    def render(self) -> str:
        if self.kwargs.get("key") is None:
            return _(self.file_message).format(**self.kwargs)
        if self.kwargs.get("value") is None:
            return _(self.key_message).format(**self.kwargs)
        return super().render()


class RegisterError(NaskahdError):
    """The register (database) cannot be opened or migrated."""


class RegisterDamaged(RegisterError):
    """The register file is damaged (register/db.py). ``reason``: the same as a stored
    reason (reasons.py), for what is shown later in another reader's language."""

    def __init__(self, detail: str, *, reason: str) -> None:
        self.reason = reason
        super().__init__(detail)


class AgeError(NaskahdError):
    """An age file, recipient or identity is malformed, or decryption failed."""

    exit_code = EXIT_CRYPTO


class AlreadyRunning(NaskahdError):
    message = N_("another naskahd is already running for {state} (pid {pid}); stop it first")


class LetterError(NaskahdError):
    """A letter's details (or a review item) refused: names the field, what was wrong and
    what to do. ``field`` is the detail concerned (``perihal``), for a form to mark."""

    exit_code = EXIT_USAGE

    def __init__(self, detail: str = "", *, field: str | None = None, **kwargs: object) -> None:
        self.field = field
        super().__init__(detail, **kwargs)


class ExemptDetailRefused(LetterError):
    """A detail an exempt letter may not keep in clear (its subject, its sender...)."""

    message = N_("{agenda} is an exempt letter: only its agenda number, dates and sifat are kept in the register "
                 "in clear, so {fields} cannot be recorded for it; nothing was changed")


class UnknownDocument(LetterError):
    message = N_("no document with agenda number {agenda} is in the register; check the number "
                 "(for example 0001/M/2026, as 'naskahd list' shows it)")
