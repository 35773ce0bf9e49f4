"""API tokens: created and revoked by admins, checked by the server on every request.

A token is a random 256-bit secret, `chtr_` followed by the unpadded URL-safe base64 of 32 random
bytes. Only the hex SHA-256 of the whole secret string is stored (a leaked table cannot be
replayed); the secret is shown once, at creation, and never stored, logged or audited.

`authenticate` runs on every API request, so it never writes and is cheap: an accepted token is
cached by its digest until the ledger head moves. Every change that can invalidate a token — a
revocation, disabling its user — appends an audit event, which moves the head, so such a token is
refused on the very next request. Expiry is checked against the clock on every call, cached or not.

A token's purpose is `api` (any client), `signin-link` or `web-session`. `charter server
--signin-link` prints a link holding a one-time `signin-link` token: it cannot call the API, and
the web UI redeems it exactly once (`redeem_signin_link`), revoking it and opening a `web-session`
token for the same user in the same transaction; signing out revokes that session token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from charter.domain.roles import Action
from charter.errors import InvalidInput, NotFound, Refused, Unauthenticated
from charter.service.access import authorize
from charter.service.readcache import LedgerCache
from charter.storage.tokens import TokenRecord, TokenRepo

if TYPE_CHECKING:
    from charter.service.registry import Registry

PREFIX = "chtr_"
DEFAULT_EXPIRY = timedelta(days=90)
API, SIGNIN_LINK, WEB_SESSION = "api", "signin-link", "web-session"
SIGNIN_LINK_LIFETIME = timedelta(hours=1)
_MAX_SECRET_LENGTH = 200  # a real secret is 48 characters; anything much longer is not one
_MAX_NAME_LENGTH = 100


def new_secret() -> str:
    """A fresh token secret: `chtr_` + unpadded URL-safe base64 of 32 random bytes."""
    return PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")


def token_digest(secret: str) -> str:
    """What is stored for a secret: the hex SHA-256 of its UTF-8 bytes (prefix included)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def token_status(expires_at: datetime | None, revoked_at: datetime | None, now: datetime) -> str:
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and now >= expires_at:
        return "expired"
    return "active"


@dataclass(frozen=True)
class TokenInfo:
    """Everything about a token except its secret and digest."""

    id: int
    user: str
    name: str
    purpose: str  # api | signin-link | web-session
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    status: str  # active | expired | revoked, as of when it was read

    @classmethod
    def of(cls, record: TokenRecord, now: datetime) -> TokenInfo:
        return cls(
            record.id,
            record.user,
            record.name,
            record.purpose,
            record.created_at,
            record.created_by,
            record.expires_at,
            record.revoked_at,
            record.revoked_by,
            token_status(record.expires_at, record.revoked_at, now),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "name": self.name,
            "purpose": self.purpose,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "expires_at": _iso(self.expires_at),
            "revoked_at": _iso(self.revoked_at),
            "revoked_by": self.revoked_by,
            "status": self.status,
        }


@dataclass(frozen=True)
class CreatedToken(TokenInfo):
    """A token just created: the only time its secret exists outside the caller's hands."""

    secret: str = field(default="", repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "secret": self.secret}


@dataclass(frozen=True)
class _Accepted:
    digest: str
    user: str
    expires_at: datetime | None
    purpose: str


class TokenService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._probe = LedgerCache(registry.store, registry.actor)
        self._lock = threading.Lock()
        # (ledger head sequence, accepted tokens by digest), replaced as a whole
        self._accepted: tuple[int, dict[str, _Accepted]] = (-1, {})

    def create(
        self, user: str, *, name: str = "", expires: timedelta | None = DEFAULT_EXPIRY
    ) -> CreatedToken:
        """A new API token for `user` (admin only); `expires=None` means it never expires."""
        return self._issue(user, name=name, expires=expires, purpose=API)

    def create_signin_link(self, user: str, *, lifetime: timedelta = SIGNIN_LINK_LIFETIME) -> CreatedToken:
        """A one-time web sign-in token for `user` (admin only), valid for `lifetime` or until used."""
        return self._issue(user, name="web sign-in link", expires=lifetime, purpose=SIGNIN_LINK)

    def _issue(self, user: str, *, name: str, expires: timedelta | None, purpose: str) -> CreatedToken:
        name = name.strip()
        if len(name) > _MAX_NAME_LENGTH or any(not c.isprintable() for c in name):
            raise InvalidInput(
                f"a token name must be at most {_MAX_NAME_LENGTH} printable characters", name=name
            )
        if expires is not None and expires <= timedelta(0):
            raise InvalidInput("a token's lifetime must be positive (90d, 12h, …) or never")
        secret = new_secret()
        with self.registry.store.write() as tx:
            authorize(tx, self.registry.actor, Action.MANAGE_TOKENS)
            holder = tx.users.find(user)
            if holder is None:
                raise NotFound(f"user {user!r}", "list users with `charter user list`")
            if holder.disabled:
                raise Refused(
                    f"user {user!r} is disabled and cannot hold API tokens; enable it first "
                    f"(`charter user enable {user}`)",
                    user=user,
                )
            now = tx.clock.now()
            record = TokenRepo(tx.conn).add(
                holder.id,
                name,
                token_digest(secret),
                at=now,
                by=self.registry.actor,
                expires_at=None if expires is None else now + expires,
                purpose=purpose,
            )
            tx.ledger.append(
                self.registry.actor,
                "token.created",
                f"user:{user}",
                {
                    "token": record.id,
                    "user": user,
                    "name": name,
                    "purpose": purpose,
                    "expires_at": _iso(record.expires_at),
                },
            )
            info = TokenInfo.of(record, now)
        return CreatedToken(**info.__dict__, secret=secret)

    def list(self, user: str | None = None) -> list[TokenInfo]:
        """Every token (or one user's), oldest first, with its status now (admin only)."""
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.MANAGE_TOKENS)
            if user is not None and tx.users.find(user) is None:
                raise NotFound(f"user {user!r}", "list users with `charter user list`")
            now = tx.clock.now()
            return [TokenInfo.of(r, now) for r in TokenRepo(tx.conn).all(user)]

    def revoke(self, token_id: int, *, reason: str = "") -> TokenInfo:
        """Revoke a token for good (admin only); the server refuses it from the next request on."""
        with self.registry.store.write() as tx:
            authorize(tx, self.registry.actor, Action.MANAGE_TOKENS)
            tokens = TokenRepo(tx.conn)
            record = tokens.get(token_id)
            if record is None:
                raise NotFound(f"API token {token_id}", "list tokens with `charter token list`")
            if record.revoked_at is not None:
                raise Refused(
                    f"API token {token_id} was already revoked at {record.revoked_at.isoformat()} by "
                    f"{record.revoked_by}; a revoked token stays revoked, nothing changed",
                    token=token_id,
                )
            now = tx.clock.now()
            if not tokens.revoke(token_id, at=now, by=self.registry.actor):
                raise Refused(f"API token {token_id} was revoked by someone else just now", token=token_id)
            tx.ledger.append(
                self.registry.actor,
                "token.revoked",
                f"user:{record.user}",
                {"token": token_id, "user": record.user, "name": record.name, "reason": reason},
            )
            revoked = tokens.get(token_id)
            assert revoked is not None
            return TokenInfo.of(revoked, now)

    def authenticate(self, secret: str) -> str:
        """The user a secret belongs to; `Unauthenticated` if it is unknown, expired, revoked or
        its user is disabled. Never writes; one ledger-head read when the token is cached."""
        if not secret.startswith(PREFIX) or len(secret) > _MAX_SECRET_LENGTH:
            raise Unauthenticated("that is not a charter API token (they start with chtr_)")
        digest = token_digest(secret)
        accepted = self._cached(digest) or self._look_up(digest)
        if not hmac.compare_digest(accepted.digest, digest):  # the stored digest, in constant time
            raise Unauthenticated("the token is not known")
        if accepted.expires_at is not None and self.registry.clock.now() >= accepted.expires_at:
            raise Unauthenticated(f"the token expired at {accepted.expires_at.isoformat()}")
        if accepted.purpose == SIGNIN_LINK:
            raise Unauthenticated(
                "that is a one-time web sign-in link, not an API token; open the link in a browser"
            )
        return accepted.user

    def redeem_signin_link(self, secret: str, *, session_lifetime: timedelta) -> tuple[str, CreatedToken]:
        """Use a one-time sign-in link: revoke it and open a `web-session` token for its user, in one
        transaction (of two concurrent redemptions exactly one succeeds). Returns the user and the
        session token; `Unauthenticated` if the link is unknown, used, expired or its user disabled."""
        if not secret.startswith(PREFIX) or len(secret) > _MAX_SECRET_LENGTH:
            raise Unauthenticated("that is not a charter sign-in link (its token starts with chtr_)")
        digest = token_digest(secret)
        session_secret = new_secret()
        with self.registry.store.write() as tx:
            tokens = TokenRepo(tx.conn)
            link = tokens.find_by_digest(digest)
            if link is None or not hmac.compare_digest(link.digest, digest):
                raise Unauthenticated("the sign-in link is not known")
            if link.purpose != SIGNIN_LINK:
                raise Unauthenticated("that token is not a sign-in link; paste it into the sign-in form")
            now = tx.clock.now()
            if link.revoked_at is not None:
                raise Unauthenticated(
                    f"the sign-in link was already used (or revoked) at {link.revoked_at.isoformat()}; "
                    "sign-in links work once — ask for a new one or sign in with an API token"
                )
            if link.expires_at is not None and now >= link.expires_at:
                raise Unauthenticated(f"the sign-in link expired at {link.expires_at.isoformat()}")
            if link.user_disabled:
                raise Unauthenticated("the sign-in link's user is disabled")
            holder = tx.users.find(link.user)
            assert holder is not None
            if not tokens.revoke(link.id, at=now, by=link.user):
                raise Unauthenticated("the sign-in link was used by another request just now")
            session = tokens.add(
                holder.id,
                "web session",
                token_digest(session_secret),
                at=now,
                by=link.user,
                expires_at=now + session_lifetime,
                purpose=WEB_SESSION,
            )
            tx.ledger.append(
                link.user,
                "token.signin",
                f"user:{link.user}",
                {"link": link.id, "session_token": session.id, "expires_at": _iso(session.expires_at)},
            )
            info = TokenInfo.of(session, now)
        return link.user, CreatedToken(**info.__dict__, secret=session_secret)

    def end_session(self, secret: str) -> bool:
        """Sign-out: revoke `secret` if it is a web-session token (API tokens pasted into the sign-in
        form stay valid: only their cookie is dropped). True if a token was revoked."""
        digest = token_digest(secret)
        with self.registry.store.write() as tx:
            tokens = TokenRepo(tx.conn)
            record = tokens.find_by_digest(digest)
            if record is None or record.purpose != WEB_SESSION or record.revoked_at is not None:
                return False
            if not tokens.revoke(record.id, at=tx.clock.now(), by=record.user):
                return False
            tx.ledger.append(
                record.user,
                "token.revoked",
                f"user:{record.user}",
                {"token": record.id, "user": record.user, "name": record.name, "reason": "signed out"},
            )
        return True

    def _cached(self, digest: str) -> _Accepted | None:
        cached_at, entries = self._accepted
        if not entries or self._probe.head() != cached_at:
            return None
        return entries.get(digest)

    def _look_up(self, digest: str) -> _Accepted:
        with self.registry.store.read() as tx:
            before = tx.ledger.head()[0]
            record = TokenRepo(tx.conn).find_by_digest(digest)
            after = tx.ledger.head()[0]
        if record is None or not hmac.compare_digest(record.digest, digest):
            raise Unauthenticated("the token is not known")
        if record.revoked_at is not None:
            raise Unauthenticated(f"the token was revoked at {record.revoked_at.isoformat()}")
        if record.user_disabled:
            raise Unauthenticated("the token's user is disabled")
        accepted = _Accepted(record.digest, record.user, record.expires_at, record.purpose)
        if before == after:  # the head did not move while reading: the answer holds at `before`
            with self._lock:
                cached_at, entries = self._accepted
                if before > cached_at or len(entries) >= LedgerCache.MAX_ENTRIES:
                    self._accepted = (before, {digest: accepted})
                elif before == cached_at:
                    entries[digest] = accepted
        return accepted


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()
