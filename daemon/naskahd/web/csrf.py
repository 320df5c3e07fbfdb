"""CSRF protection: every form carries a token that a cross-site page cannot know.

Signed in, the token is the session's own (kept with it in the register). The login form,
before any session, uses a double-submit token: a random value in a cookie of its own
(SameSite=Strict) that the form must repeat. A POST whose token does not match is refused
with 403 and changes nothing.
"""

from __future__ import annotations

import hmac
import secrets

FIELD = "csrf"
LOGIN_COOKIE = "naskahd_login"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def matches(expected: str | None, given: object) -> bool:
    if not expected or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))
