"""Print the body of one HTTP GET (the demo's curl; busybox wget
crashes in a bare network namespace)."""

from __future__ import annotations

import sys
import urllib.request


def main() -> int:
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=3) as answer:  # noqa: S310
            sys.stdout.write(answer.read().decode())
    except OSError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
