"""The only code that talks to the outside world (one module per system)."""

__all__: list[str] = []
