"""Steps, plans/diffs, the runner with retries, and the storage Protocols it needs."""

__all__: list[str] = []
