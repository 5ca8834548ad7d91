"""Flows: ordered lists of steps (onboard, upgrade, suspend, offboard, reconcile)."""

__all__: list[str] = []
