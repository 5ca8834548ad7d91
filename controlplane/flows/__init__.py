"""Flows: ordered lists of steps (onboard, reconcile, suspend, resume, tier-change; offboard)."""

from controlplane.flows.dependencies import Dependencies
from controlplane.flows.registry import FLOWS, steps_for

__all__ = ["FLOWS", "Dependencies", "steps_for"]
