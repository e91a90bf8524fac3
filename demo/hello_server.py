"""A tiny HTTP server for the demo: answers every GET with who asked
(the client address as the server saw it, after any NAT)."""

from __future__ import annotations

import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        me = self.server.server_address[0]
        who = self.client_address[0]
        body = f"hello {who} from {me}{self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        sys.stdout.write(fmt % args + "\n")
        sys.stdout.flush()


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    http.server.ThreadingHTTPServer((host, port), Handler).serve_forever()


if __name__ == "__main__":
    main()
