"""GitOps output: every tenant's files for Argo CD / Flux, written byte-stably."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from controlplane.config.loading import TenantSource
from controlplane.models.platform import PlatformConfig
from controlplane.resources import rendering

__all__ = ["render"]


def render(sources: Sequence[TenantSource], platform: PlatformConfig, out_dir: Path) -> list[Path]:
    """Write `OUT/<tenant-id>/...` per tenant and `OUT/_platform/`; never a secret.

    Byte-stable: a file is rewritten only when its bytes change. Returns what was written.
    """
    trees = {rendering.PLATFORM_DIR: rendering.platform_files(platform)}
    for source in sources:
        trees[source.tenant.id] = rendering.tenant_files(source.tenant, platform)
    written = []
    for folder, files in trees.items():
        for relative, text in sorted(files.items()):
            path = out_dir / folder / relative
            if path.exists() and path.read_text() == text:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written.append(path)
    return written
