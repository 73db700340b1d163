"""A real process that holds a directory's jaxbert lock: `python tests/lock_holder.py DIR [LEASE_TTL_S]`.

Prints "locked" once it holds the lock (or "refused: <message>" and exits 3), then holds it until its stdin
closes (a clean release) or it is killed. With STORAGE_EMULATOR_HOST set, DIR may be a gs:// URL.
"""

from __future__ import annotations

import sys

from jaxbert.lock import DirectoryLock, LockedError


def main() -> int:
    ttl = float(sys.argv[2]) if len(sys.argv) > 2 else None
    try:
        with DirectoryLock.hold(sys.argv[1], lease_ttl_s=ttl):
            print("locked", flush=True)
            sys.stdin.read()
    except LockedError as e:
        print(f"refused: {e}", flush=True)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
