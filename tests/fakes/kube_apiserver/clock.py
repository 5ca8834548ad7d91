"""The one clock of the fake: Kubernetes timestamps are RFC 3339 UTC with whole seconds."""

from __future__ import annotations

import datetime as dt


def utc_now() -> str:
    """RFC 3339 UTC with seconds, as Kubernetes timestamps are written."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
