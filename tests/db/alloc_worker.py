"""Worker for the concurrency tests: ``python -m tests.db.alloc_worker
URL NETWORK PREFIX COUNT GO_FILE``. Waits for GO_FILE to exist, then
allocates COUNT instances named PREFIX-<n> on NETWORK through the
manager (random MACs), and prints "<ok> <errors>"."""

from __future__ import annotations

import os
import sys
import time

from flatnet.db import api
from flatnet.service import manager


def main(argv: list[str]) -> int:
    url, network, prefix, count, go = argv
    db = api.Database(url)
    mgr = manager.FlatDHCPManager(db)
    deadline = time.monotonic() + 60
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.005)
    ok = errors = 0
    for n in range(int(count)):
        try:
            mgr.allocate_for_instance(f"{prefix}-{n}", network=network)
            ok += 1
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors += 1
            print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
    db.dispose()
    print(ok, errors)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
