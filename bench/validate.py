"""Validating 10,000 tenant files vs just parsing them with PyYAML's C loader.

Target (issue 3): full validation — read, parse, schema, platform rules, cross-file
collisions — costs at most 2x the bare parse, measured in the same run. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from controlplane.config import loading
from controlplane.models.platform import PlatformConfig

TIERS = ["standard", "enterprise", "premium"]
REGIONS = ["us-east-1", "us-west-2", "eu-west-1"]


def _tenant(i: int, rng: random.Random) -> str:
    tier = TIERS[i % 3]
    return f"""tenant:
  id: tenant-{i:05d}
  name: "Tenant {i}"
  tier: {tier}
  region: {REGIONS[i % 3]}
  domains:
    subdomain: t{i:05d}
    custom: [shop{i}.example-{i}.com]
  features: {{ai_agents: {str(rng.random() < 0.5).lower()}, dynamic_pricing: false}}
  limits: {{cpu: "{rng.choice([1, 2, 4, 8])}", memory: {rng.choice([2, 4, 8])}Gi, \
pods: {rng.randint(5, 50)}}}
  branding: {{primary_color: "#1a73e8", logo_url: "https://cdn.example.com/{i}.svg"}}
  integrations: {{erp: sap_s4hana, pos: oracle_xstore, payment: adyen}}
  compliance: {{pci_dss_level: {2 if tier != "premium" else 1}, data_residency: [{REGIONS[i % 3]}]}}
  ai: {{llm_provider: claude, self_hosted_models: false, agent_memory_ttl: 30d}}
  lifecycle: {{deletion_protection: true, retention_days: 30}}
"""


def _best(func: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(7)
    platform = PlatformConfig()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i in range(args.tenants):
            (folder / f"tenant-{i:05d}.yaml").write_text(_tenant(i, rng))
        files = sorted(folder.glob("*.yaml"))

        def parse_only() -> None:
            for path in files:
                yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)

        def validate() -> None:
            if len(loading.load_tenants([folder], platform)) != args.tenants:
                sys.exit("validation lost tenants")

        # Interleave the two so background load hits both alike; keep each one's best.
        parse, full = float("inf"), float("inf")
        for _ in range(args.repeat):
            parse = min(parse, _best(parse_only, 1))
            full = min(full, _best(validate, 1))
    print(
        json.dumps(
            {
                "bench": "validate",
                "tenants": args.tenants,
                "parse_only_s": round(parse, 3),
                "validate_s": round(full, 3),
                "ratio": round(full / parse, 3),
                "target_ratio_max": 2.0,
            }
        )
    )


if __name__ == "__main__":
    main()
