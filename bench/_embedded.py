"""What benchmarks on the embedded default share: stopping the Postgres it started."""

from __future__ import annotations

import importlib
from pathlib import Path


def stop(pgdata: Path) -> None:
    """Stop the embedded Postgres under `pgdata`, if one was created there."""
    if (pgdata / "PG_VERSION").exists():
        pgserver = importlib.import_module("pgserver")
        pgserver.get_server(pgdata, cleanup_mode="stop").cleanup()
