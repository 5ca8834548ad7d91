"""A terraform state file locked the way a running terraform locks it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_HOLDER = """
import fcntl, sys
state = open(sys.argv[1], "a")
fcntl.lockf(state, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


@contextmanager
def locked_state(path: Path) -> Iterator[None]:
    """Hold a POSIX record lock on `path` (created empty if missing) from another process.

    Another process, as terraform is: POSIX locks are per process, and any close of the file
    by this one (a read of the state, say) would drop a lock it held itself.
    """
    with subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdin is not None
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        try:
            yield
        finally:
            holder.stdin.close()  # the holder exits, and the OS drops its lock
