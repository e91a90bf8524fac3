"""HTTP/1.1 framing for the metadata server: request heads and responses.

Only what a metadata client needs (RFC 9112): a request line, header
fields, no body. Anything else is refused with a status and the
connection closed, never guessed at:

* the request line must be ``METHOD SP target SP HTTP/1.0|1.1`` with a
  target of visible ASCII only (so paths are safe to log);
* header names are tokens, values visible ASCII/space/tab; obsolete line
  folding, more than ``max_headers`` fields, an HTTP/1.1 request without
  ``Host``, or repeated ``Host``/``Content-Length`` are a 400;
* a request with a body (``Content-Length`` > 0 or any
  ``Transfer-Encoding``) gets 413: no metadata request has one.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse

REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

# name ":" value: a token, then visible ASCII, space and tab only
_FIELD = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):([\x20-\x7e\t]*)\Z")
_TARGET = re.compile(rb"[\x21-\x7e]+\Z")
_REQUEST_LINE = re.compile(rb"([A-Z]+) (\S+) HTTP/1\.([01])\Z")
MAX_TARGET = 2048


class HttpError(Exception):
    """A request that gets ``status`` and a closed connection."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """A parsed request head (header names lower-cased)."""

    method: str
    target: str
    path: str
    minor: int
    headers: dict[str, str]
    keep_alive: bool


def _path(target: bytes) -> str:
    if target.startswith((b"http://", b"https://")):
        # absolute-form (RFC 9112 3.2.2): only the path matters here
        after = target.split(b"//", 1)[1]
        slash = after.find(b"/")
        target = after[slash:] if slash >= 0 else b"/"
    elif not target.startswith(b"/"):
        raise HttpError(400, "request target is not a path")
    raw = target.split(b"?", 1)[0].decode("ascii")
    return urllib.parse.unquote(raw, errors="strict")


def _headers(lines: list[bytes], max_headers: int) -> dict[str, str]:
    if len(lines) > max_headers:
        raise HttpError(431, "too many header fields")
    headers: dict[str, str] = {}
    for line in lines:
        match = _FIELD.match(line)
        if match is None:
            raise HttpError(400, "malformed header field")
        key = match.group(1).decode("ascii").lower()
        text = match.group(2).strip(b" \t").decode("ascii")
        if key in headers:
            if key in ("host", "content-length"):
                raise HttpError(400, f"repeated {key} header")
            text = f"{headers[key]}, {text}"
        headers[key] = text
    return headers


def _keep_alive(minor: int, headers: dict[str, str]) -> bool:
    tokens = {
        t.strip().lower() for t in headers.get("connection", "").split(",")
    }
    if minor == 0:
        return "keep-alive" in tokens
    return "close" not in tokens


def parse_head(head: bytes, max_headers: int = 64) -> Request:
    """Parse a request head (everything before the blank line)."""
    lines = head.split(b"\r\n")
    match = _REQUEST_LINE.match(lines[0])
    if match is None:
        raise HttpError(400, "malformed request line")
    method, target, minor_b = match.groups()
    if len(target) > MAX_TARGET:
        raise HttpError(414, "request target too long")
    if not _TARGET.match(target):
        raise HttpError(400, "invalid character in request target")
    headers = _headers(lines[1:], max_headers)
    minor = int(minor_b)
    if minor == 1 and "host" not in headers:
        raise HttpError(400, "HTTP/1.1 request without Host")
    if "transfer-encoding" in headers:
        raise HttpError(413, "request bodies are not accepted")
    length = headers.get("content-length", "0")
    if not length.isdigit():
        raise HttpError(400, "invalid Content-Length")
    if int(length) > 0:
        raise HttpError(413, "request bodies are not accepted")
    try:
        path = _path(target)
    except UnicodeDecodeError as exc:
        raise HttpError(400, "request target is not UTF-8") from exc
    return Request(
        method=method.decode("ascii"),
        target=target.decode("ascii"),
        path=path,
        minor=minor,
        headers=headers,
        keep_alive=_keep_alive(minor, headers),
    )


def response(
    status: int,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    *,
    keep_alive: bool = True,
    head_only: bool = False,
    extra: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """One complete HTTP/1.1 response."""
    lines = [
        f"HTTP/1.1 {status} {REASONS[status]}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
    ]
    lines.extend(f"{name}: {value}" for name, value in extra)
    if not keep_alive:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    return head if head_only else head + body


def error(
    status: int,
    *,
    keep_alive: bool = False,
    head_only: bool = False,
    extra: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """A short plain-text error response (closes unless told)."""
    body = f"{status} {REASONS[status]}\n".encode()
    return response(
        status, body, keep_alive=keep_alive, head_only=head_only, extra=extra
    )
