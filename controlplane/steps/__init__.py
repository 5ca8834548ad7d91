"""Step implementations: one external resource or concern each."""

__all__: list[str] = []
