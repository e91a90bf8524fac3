"""IMDSv2-style session tokens, bound to the instance's source address.

A token is ``<expiry>.<mac>``: ``expiry`` in whole seconds of the
server's monotonic clock, ``mac`` the URL-safe base64 of
HMAC-SHA256(secret, ``"<source ip>|<expiry>"``) truncated to 128 bits.
The secret is random per process, so nothing is stored per token, a
token is worthless from any other source address, and a restart
invalidates every token (clients ask again after a 401, as on EC2).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

TOKEN_PATH = "/latest/api/token"  # noqa: S105 (a path)
TTL_HEADER = "x-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "x-aws-ec2-metadata-token"  # noqa: S105 (a header name)
MAX_TTL = 21600  # seconds, as EC2 (6 hours)
_MAC_BYTES = 16


class TokenSigner:
    """Issues and checks tokens; ``secret`` defaults to 32 random bytes."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = (
            secret if secret is not None else secrets.token_bytes(32)
        )

    def _mac(self, ip: str, expiry: int) -> str:
        digest = hmac.new(
            self._secret, f"{ip}|{expiry}".encode(), hashlib.sha256
        ).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def issue(self, ip: str, ttl: int, now: float) -> str:
        """A token for ``ip`` valid for ``ttl`` seconds from ``now``."""
        expiry = int(now) + ttl
        return f"{expiry}.{self._mac(ip, expiry)}"

    def valid(self, token: str, ip: str, now: float) -> bool:
        """True when ``token`` was issued to ``ip`` and has not expired."""
        expiry_text, sep, mac = token.partition(".")
        if not sep or not expiry_text.isdigit() or len(expiry_text) > 12:
            return False
        expiry = int(expiry_text)
        if expiry <= now:
            return False
        return hmac.compare_digest(mac, self._mac(ip, expiry))


def parse_ttl(value: str | None) -> int | None:
    """The requested TTL if it is an integer in 1..21600, else None."""
    if value is None or not value.isdigit() or len(value) > 6:
        return None
    ttl = int(value)
    return ttl if 1 <= ttl <= MAX_TTL else None
