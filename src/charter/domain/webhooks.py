"""Webhook rules: which events a webhook wants, how a delivery is signed, when a failed one is retried.

Pure functions over values; the outbox and the HTTP calls live in `charter.service.webhooks`.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from datetime import timedelta
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from charter.errors import InvalidInput

MAX_ATTEMPTS = 12  # after this many failed attempts a delivery is `failed`
FIRST_RETRY = 10.0  # seconds after the first failed attempt …
RETRY_FACTOR = 3.0  # … times this for each further one (10 s, 30 s, 1.5 min, 4.5 min, …)
MAX_RETRY = 3600.0  # … capped at one hour
JITTER = 0.1  # each delay is spread over ±10 %
MAX_URL = 2000
MAX_EVENTS = 300
MIN_SECRET, MAX_SECRET = 16, 200

_PATTERN = re.compile(r"[a-z0-9_*?][a-z0-9_.*?-]*")
_SECRET = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"

    @classmethod
    def parse(cls, text: str) -> DeliveryStatus:
        try:
            return cls(text.strip().lower())
        except ValueError:
            accepted = ", ".join(s.value for s in cls)
            raise InvalidInput(f"{text!r} is not a delivery status; accepted: {accepted}") from None


def parse_patterns(text: str) -> tuple[str, ...]:
    """The comma-separated event globs of a webhook (`model.*,rollout.*`, `*`), validated."""
    patterns = tuple(p.strip() for p in text.split(","))
    if not text.strip() or any(not p for p in patterns):
        raise InvalidInput(
            f"event patterns {text!r} are not valid: give one or more comma-separated globs over audit "
            "actions, such as `model.*,rollout.*`, `prompt.promoted` or `*`"
        )
    for pattern in patterns:
        if not _PATTERN.fullmatch(pattern):
            raise InvalidInput(
                f"event pattern {pattern!r} is not valid: a pattern is an audit action (`model.promoted`) "
                "in lower case, where `*` matches any run of characters and `?` one character "
                "(`model.*`, `rollout.rolled_back`, `*`)"
            )
    joined = ",".join(dict.fromkeys(patterns))
    if len(joined) > MAX_EVENTS:
        raise InvalidInput(
            f"event patterns are {len(joined)} characters long; at most {MAX_EVENTS} are accepted"
        )
    return tuple(dict.fromkeys(patterns))


def matches(patterns: str | tuple[str, ...], action: str) -> bool:
    """Whether a webhook with these patterns (stored form: comma-separated) wants `action`."""
    items = patterns.split(",") if isinstance(patterns, str) else patterns
    return any(fnmatchcase(action, p) for p in items)


def check_url(url: str) -> str:
    """An absolute http(s) URL without credentials; refused with the reason otherwise."""
    url = url.strip()
    accepted = "accepted: an absolute http:// or https:// URL such as https://hooks.example.com/charter"
    if len(url) > MAX_URL:
        raise InvalidInput(f"the webhook URL is {len(url)} characters long; at most {MAX_URL} are accepted")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"{url!r} is not a valid URL ({exc}); {accepted}") from None
    if parts.scheme not in ("http", "https"):
        scheme = parts.scheme or "no scheme"
        raise InvalidInput(
            f"webhook URL {url!r} has {scheme!r}: only http and https are delivered to; {accepted}"
        )
    if not parts.hostname:
        raise InvalidInput(f"webhook URL {url!r} names no host; {accepted}")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(
            f"webhook URL {_without_credentials(url)!r} carries credentials: the URL is recorded in the "
            "audit ledger, so credentials are refused there; give a shared secret with --secret instead"
        )
    if parts.fragment:
        raise InvalidInput(f"webhook URL {url!r} has a #fragment, which is never sent; remove it")
    if port == 0:
        raise InvalidInput(f"webhook URL {url!r} names port 0; {accepted}")
    return url


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"***@{host}").geturl()


def check_secret(secret: str) -> str:
    if not MIN_SECRET <= len(secret) <= MAX_SECRET or not _SECRET.fullmatch(secret):
        raise InvalidInput(
            f"a webhook secret must be {MIN_SECRET} to {MAX_SECRET} printable ASCII characters without "
            "spaces; leave out --secret and charter generates one"
        )
    return secret


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, the X-Charter-Signature header."""
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def retry_delay(delivery: int, attempts: int) -> timedelta:
    """How long after attempt number `attempts` (1, 2, …) of `delivery` the next one is made.

    Exponential (10 s, 30 s, 1.5 min, … capped at 1 h), spread by ±10 % so that deliveries that
    failed together do not come back together. The spread is derived from the delivery id and the
    attempt number, not drawn at random, so the time of the last attempt can be recovered from the
    time of the next one (`next_attempt_at - retry_delay(...)`).
    """
    if attempts < 1:
        raise ValueError("attempts count from 1")
    base = min(FIRST_RETRY * RETRY_FACTOR ** (attempts - 1), MAX_RETRY)
    digest = hashlib.blake2b(f"{delivery}:{attempts}".encode(), digest_size=8).digest()
    spread = int.from_bytes(digest, "big") / 2**64  # in [0, 1)
    return timedelta(microseconds=round(base * (1 - JITTER + 2 * JITTER * spread) * 1_000_000))
