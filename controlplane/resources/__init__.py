"""Pure functions from a tenant and the platform to desired objects."""

__all__: list[str] = []
