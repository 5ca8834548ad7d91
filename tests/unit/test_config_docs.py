"""The examples in docs/tenant-yaml.md load as the reference says."""

from __future__ import annotations

import re
from pathlib import Path

from controlplane.config import loading
from controlplane.models.platform import Tier

DOC = Path(__file__).resolve().parents[2] / "docs" / "tenant-yaml.md"


def _example(root: str) -> str:
    blocks: list[str] = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.DOTALL)
    [block] = [b for b in blocks if b.startswith(f"{root}:")]
    return block


def test_platform_example_overrides_one_tier_field(tmp_path: Path) -> None:
    path = tmp_path / "platform.yaml"
    path.write_text(_example("platform"))
    platform = loading.load_platform(path)
    standard = platform.tiers[Tier.STANDARD]
    assert (standard.max_cpu, standard.max_memory) == ("10", "16Gi")
    assert (standard.database.connection_limit, standard.database.statement_timeout) == (25, "30s")
    assert platform.regions == ["us-east-1", "eu-central-1"]


def test_tenant_example_is_valid() -> None:
    platform = loading.load_platform(None)
    source = loading.load_tenant_text(_example("tenant"), "doc.yaml", platform)
    assert (source.tenant.id, source.tenant.domains.custom) == ("tenant-100", ("shop.acme.com",))
