"""The register (daftar kontrol backup): SQLAlchemy models, agenda numbering, migrations.

Only SQLAlchemy Core/ORM is used, so the register can later live on PostgreSQL; the
SQLite-specific settings are all in ``db.py``.
"""

from naskahd.register.db import error_words, open_register, space_problem
from naskahd.register.letters import LetterDetails, LetterIndex, LetterWord
from naskahd.register.models import (
    AgendaCounter, Base, Copy, Document, DocumentState, Drive, Duplicate, Installation, ReviewItem,
)
from naskahd.register.numbering import allocate_number, format_agenda
from naskahd.register.accounts import WebSession, WebUser
from naskahd.register.records import AuditEvent, AuditHead, Report

__all__ = [
    "AgendaCounter", "AuditEvent", "AuditHead", "Base", "Copy", "Document", "DocumentState", "Drive", "Duplicate",
    "Installation", "LetterDetails", "LetterIndex", "LetterWord", "Report", "ReviewItem", "allocate_number",
    "error_words", "format_agenda", "open_register", "space_problem",
    "WebSession", "WebUser",
]
