"""What every `tenantctl` process pays before its command runs."""

from __future__ import annotations

import subprocess
import sys

# Libraries only some commands need, each loaded when first called: boto3 by
# `aws.boto_client`, the Cloudflare SDK by live DNS, Alembic by a migration. (botocore's
# exception classes, a few milliseconds, are imported for `except` clauses.)
_LAZY = ("boto3", "cloudflare", "alembic")


def test_starting_the_cli_loads_no_sdk_it_may_not_need() -> None:
    probe = f"import sys, tenantctl.main; print(' '.join(m for m in {_LAZY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_the_cli_collects_garbage_rarely_and_not_what_imports_made() -> None:
    probe = "import gc, tenantctl.main; print(gc.get_threshold()[0], gc.get_freeze_count() > 0)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    threshold, frozen = done.stdout.split()
    assert int(threshold) >= 10_000  # CPython's default is 700
    assert frozen == "True"
