"""Desired DNS (pure), its render, ownership markers, and the render-mode dns step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.drivers.dns_files import RenderedDns
from controlplane.engine.steps import StepContext
from controlplane.models.dns import ownership_comment, parse_ownership
from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.resources import dns
from controlplane.steps.dns import DnsStep


def _tenant(**domains: Any) -> Tenant:
    return Tenant.model_validate(
        {
            "id": "acme",
            "name": "Acme",
            "tier": "standard",
            "region": "us-east-1",
            "domains": domains,
        }
    )


DESIRED_CASES = [
    {
        "reason": "subdomain defaults to the tenant id",
        "tenant": _tenant(),
        "platform": PlatformConfig(),
        "want": ("acme.tenants.example.com", "ingress.tenants.example.com", (), "tenantctl"),
    },
    {
        "reason": "explicit subdomain, custom hostnames sorted, platform owner id",
        "tenant": _tenant(subdomain="shop", custom=["z.acme.com", "a.acme.com"]),
        "platform": PlatformConfig(
            base_domain="Apps.Example.NET.", ingress_target="LB.example.net", dns_owner_id="cp-eu"
        ),
        "want": ("shop.apps.example.net", "lb.example.net", ("a.acme.com", "z.acme.com"), "cp-eu"),
    },
]


@pytest.mark.parametrize("case", DESIRED_CASES, ids=lambda c: c["reason"])
def test_desired_dns(case: dict[str, Any]) -> None:
    got = dns.desired(case["tenant"], case["platform"])
    (record,) = got.records
    name, target, custom, owner = case["want"]
    assert (record.type, record.name, record.content, record.proxied, record.ttl) == (
        "CNAME",
        name,
        target,
        True,
        1,
    )
    assert (got.custom_hostnames, got.owner, got.origin) == (custom, owner, name)
    assert got.comment == f"managed-by=tenantctl owner={owner} tenant=acme"


def test_render_is_a_byte_stable_external_dns_endpoint() -> None:
    tenant = _tenant(custom=["shop.acme.com"])
    text = dns.render(tenant, PlatformConfig())
    assert text == dns.render(tenant.model_copy(), PlatformConfig().model_copy(deep=True))
    doc = yaml.safe_load(text)
    assert (doc["apiVersion"], doc["kind"]) == ("externaldns.k8s.io/v1alpha1", "DNSEndpoint")
    assert doc["spec"]["endpoints"] == [
        {
            "dnsName": "acme.tenants.example.com",
            "recordType": "CNAME",
            "targets": ["ingress.tenants.example.com"],
            "recordTTL": 1,
            "providerSpecific": [
                {"name": "external-dns.alpha.kubernetes.io/cloudflare-proxied", "value": "true"}
            ],
        }
    ]
    assert doc["metadata"]["annotations"]["tenantctl.io/custom-hostnames"] == "shop.acme.com"
    assert "CNAME shop.acme.com -> acme.tenants.example.com" in text


OWNERSHIP_CASES = [
    ("ours", ownership_comment("tenantctl", "acme"), ("tenantctl", "acme")),
    ("other tenant", ownership_comment("tenantctl", "globex"), ("tenantctl", "globex")),
    ("human comment", "marketing site, ask bob", None),
    ("no comment", None, None),
    ("marker among words", "note managed-by=tenantctl tenant=x owner=o", ("o", "x")),
]


@pytest.mark.parametrize(("reason", "comment", "want"), OWNERSHIP_CASES)
def test_parse_ownership(reason: str, comment: str | None, want: object) -> None:
    assert parse_ownership(comment) == want, reason


def test_render_mode_step_writes_verifies_and_removes_dns_yaml(tmp_path: Path) -> None:
    tenant, platform = _tenant(custom=["shop.acme.com"]), PlatformConfig()
    ctx = StepContext(tenant, platform, "op-1")
    step = DnsStep(RenderedDns(tmp_path))
    path = tmp_path / "acme" / "dns.yaml"

    assert [c.action for c in step.plan(ctx)] == ["create"]
    assert step.verify(ctx) == [f"{path} is missing"]
    outputs = step.apply(ctx).outputs
    assert path.read_text() == dns.render(tenant, platform)
    assert outputs["hostname"] == "acme.tenants.example.com"
    assert "not-published (render mode)" in outputs["custom_hostnames"]
    assert (step.verify(ctx), [c.action for c in step.plan(ctx)]) == ([], ["noop"])

    moved = StepContext(tenant, PlatformConfig(ingress_target="lb2.example.com"), "op-2")
    assert step.fingerprint(moved) != step.fingerprint(ctx)
    assert step.verify(moved) == [f"{path} is out of date"]
    step.destroy(ctx)
    assert not path.exists()
    step.destroy(ctx)  # already gone
