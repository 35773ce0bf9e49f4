"""Server logging that never carries a secret: query-string tokens are redacted from access logs."""

from __future__ import annotations

import logging
import re

_SECRET_PARAMS = re.compile(r"((?:^|[?&])(?:token|secret|csrf)=)[^&\s\"]*", re.IGNORECASE)
_BEARER = re.compile(r"chtr_[A-Za-z0-9_\-]+")


def redact(text: str) -> str:
    return _BEARER.sub("chtr_[redacted]", _SECRET_PARAMS.sub(r"\1[redacted]", text))


class RedactSecrets(logging.Filter):
    """Rewrites log records so that a token in a URL or message is never written out."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install_redaction() -> None:
    for name in ("uvicorn.access", "uvicorn.error", "charter.server", "charter"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
