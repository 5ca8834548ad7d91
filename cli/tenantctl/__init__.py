"""`tenantctl`: the command-line shell over `controlplane.service`."""

import gc

__all__: list[str] = []

# Set before anything else is imported. A run parses large short-lived heaps (a fleet's
# live LISTs, its state rows): at CPython's default gen-0 threshold (700) the collector
# walks them again and again (about 1.5 s of a 1,000-tenant reconcile). Few of them form
# cycles, so collecting rarely costs little memory (mypy raises it the same way).
gc.set_threshold(50_000, 20, 20)
