"""Browser sessions: a sealed cookie that never shows the API token, and CSRF tokens tied to it.

Signing in exchanges an API token for a session cookie. The cookie holds the token, the user, a
random session id and the expiry, encrypted and authenticated with AES-256-GCM under a key only
the server knows: a reader of the cookie (a log, a proxy, a stolen browser profile) cannot recover
the token from it, and a changed cookie does not open. Every request opens the cookie and checks
the token again with the token service, so revoking the token, or disabling its user, ends the
session at once; a session also ends at its own expiry, or when the token expires.

The key is derived from a secret given to the server (the same on every replica) or, if none is
given, drawn at start-up: then a restart signs everybody out, which is safe.

Forms carry a synchronizer token: HMAC-SHA256 of the session id under a second derived key. A
POST whose token does not match its session's is refused before anything runs. The sign-in form,
used before any session exists, is tied the same way to a random pre-session cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger("charter.web")
SECRET_FILE = "web-session.key"
SESSION_COOKIE = "charter_session"
SIGNIN_COOKIE = "charter_signin"
DEFAULT_MAX_AGE = timedelta(hours=12)
_AAD = b"charter web session v1"
_NONCE = 12


@dataclass(frozen=True)
class Session:
    token: str
    user: str
    sid: str  # random; CSRF tokens are derived from it
    expires: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    """Seals and opens session cookies; makes and checks CSRF tokens."""

    def __init__(self, secret: bytes | None = None, *, max_age: timedelta = DEFAULT_MAX_AGE) -> None:
        master = secret if secret else secrets.token_bytes(32)
        self._cipher = AESGCM(hmac.new(master, b"charter session cookie", hashlib.sha256).digest())
        self._csrf_key = hmac.new(master, b"charter csrf token", hashlib.sha256).digest()
        self.max_age = max_age

    def new(self, token: str, user: str, now: datetime) -> Session:
        return Session(token, user, secrets.token_urlsafe(18), now + self.max_age)

    def seal(self, session: Session) -> str:
        body = json.dumps(
            {"t": session.token, "u": session.user, "s": session.sid, "e": session.expires.isoformat()},
            separators=(",", ":"),
        ).encode()
        nonce = secrets.token_bytes(_NONCE)
        return _b64(nonce + self._cipher.encrypt(nonce, body, _AAD))

    def open(self, value: str | None, now: datetime) -> Session | None:
        """The session a cookie holds; None if it is missing, altered, not ours or expired."""
        if not value or len(value) > 4096:
            return None
        try:
            raw = _unb64(value)
            body = json.loads(self._cipher.decrypt(raw[:_NONCE], raw[_NONCE:], _AAD))
            session = Session(
                str(body["t"]), str(body["u"]), str(body["s"]), datetime.fromisoformat(body["e"])
            )
        except (InvalidTag, ValueError, KeyError, TypeError):
            return None
        return session if now < session.expires else None

    def csrf_token(self, sid: str, purpose: str = "session") -> str:
        digest = hmac.new(self._csrf_key, f"{purpose}\x1f{sid}".encode(), hashlib.sha256).digest()
        return _b64(digest)

    def check_csrf(self, sid: str, given: str | None, purpose: str = "session") -> bool:
        return bool(given) and hmac.compare_digest(self.csrf_token(sid, purpose), str(given))


def stored_secret(home: Path) -> bytes | None:
    """The session secret kept in `home` (32 random bytes, owner-only), made on first use; None if it
    can be neither read nor made. Made atomically (written aside, then linked into place), so
    processes starting together agree on one."""
    path = home / SECRET_FILE
    try:
        if not path.exists():
            home.mkdir(parents=True, exist_ok=True)
            aside = home / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
            descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                out.write(secrets.token_bytes(32))
            try:
                os.link(aside, path)
            except FileExistsError:
                pass  # another process made it first: use theirs
            finally:
                aside.unlink()
        secret = path.read_bytes()
    except OSError as exc:
        log.warning(
            "no shared web session secret in %s (%s); sessions last as long as this process", home, exc
        )
        return None
    return secret if len(secret) >= 32 else None
