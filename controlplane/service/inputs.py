"""Input for every command: tenant files and platform.yaml, validated; the JSON Schema."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from controlplane.config import loading
from controlplane.config.loading import TenantSource
from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import TenantFile

__all__ = ["load", "tenant_schema"]

log = logging.getLogger(__name__)


def tenant_schema() -> dict[str, Any]:
    """JSON Schema of the tenant file, for editors and CI."""
    schema = TenantFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tenantctl tenant file"
    return schema


def load(
    paths: Sequence[Path], platform_file: Path | None = None
) -> tuple[PlatformConfig, list[TenantSource]]:
    """Load the platform and every tenant under `paths`; ConfigError lists all problems.

    When no platform.yaml was found (or it is empty) a warning says which built-in
    defaults are in force.
    """
    loaded = loading.load(paths, platform_file)
    for notice in loaded.platform.notices:
        log.warning("%s; pass --platform FILE to use another", notice)
    return loaded.platform.config, loaded.tenants
