"""Pure parts, table-driven: parsing import files, and a suspended tenant's network and DNS."""

from __future__ import annotations

import hashlib

import pytest

from controlplane import service
from controlplane.models.imports import SourceFile
from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.resources import imports, suspension
from controlplane.resources.kubernetes.objects import Manifest

PARSED = [
    pytest.param(
        "customers.csv",
        b'id,Name\n1,Ada\n\n2,"Hopper, Grace"\n3,\n',
        "customers",
        ("id", "name"),
        (("1", "Ada"), ("2", "Hopper, Grace"), ("3", None)),
        id="csv: header lowercased, blank line skipped, empty field is NULL",
    ),
    pytest.param(
        "orders.2024.jsonl",
        b'{"id": 1, "paid": true, "tags": ["a"]}\n\n{"id": 2, "note": null, "total": 2.5}\n',
        "orders",
        ("id", "paid", "tags", "note", "total"),
        (("1", "true", '["a"]', None, None), ("2", None, None, None, "2.5")),
        id="jsonl: keys in first-seen order, table up to the first dot",
    ),
]


@pytest.mark.parametrize(("name", "data", "table", "columns", "rows"), PARSED)
def test_parse(
    name: str,
    data: bytes,
    table: str,
    columns: tuple[str, ...],
    rows: tuple[tuple[str | None, ...], ...],
) -> None:
    batch = imports.parse(SourceFile(name, data))
    assert (batch.table, batch.columns, batch.rows) == (table, columns, rows)
    assert batch.checksum == hashlib.sha256(data).hexdigest()


# (reason, file name, bytes, what the message says)
REFUSED = [
    ("short row", "a.csv", b"id,name\n1\n", "a.csv:2: data_import: 1 fields, header has 2"),
    ("not an object", "b.jsonl", b'{"id": 1}\n[1]\n', "b.jsonl:2: data_import: each line"),
    ("bad json", "c.jsonl", b"{nope\n", "c.jsonl:1: data_import: not JSON"),
    ("bad column", "d.csv", b"id,Bad Name\n", "column 'bad name' is not a lowercase SQL"),
    ("bad table", "9x.csv", b"id\n", "'9x' is not a usable table name"),
    ("the import log", "tenantctl_imports.csv", b"id\n", "not a usable table name"),
]


@pytest.mark.parametrize(("reason", "name", "data", "want"), REFUSED, ids=[r[0] for r in REFUSED])
def test_parse_refuses_with_file_line_and_problem(
    reason: str, name: str, data: bytes, want: str
) -> None:
    del reason
    with pytest.raises(service.ControlPlaneError) as caught:
        imports.parse(SourceFile(name, data))
    assert caught.value.exit_code == 2 and want in caught.value.message


def _tenant(tier: str) -> Tenant:
    return Tenant.model_validate(
        {"id": "acme", "name": "Acme", "tier": tier, "region": "us-east-1"}
    )


@pytest.mark.parametrize(
    ("tier", "want_deny"),
    [pytest.param("standard", False, id="no mesh"), pytest.param("enterprise", True, id="mesh")],
)
def test_suspended_network_drops_the_ingress_allow_and_denies_the_gateway_in_the_mesh(
    tier: str, want_deny: bool
) -> None:
    platform = PlatformConfig()
    objects = suspension.network(_tenant(tier), platform)
    names = {(o["kind"], _name(o)) for o in objects}
    assert ("NetworkPolicy", "default-deny") in names
    assert ("NetworkPolicy", suspension.INGRESS_ALLOW) not in names
    deny = [o["spec"] for o in objects if _name(o) == suspension.SUSPENDED_POLICY]
    want = {
        "action": "DENY",
        "rules": [{"from": [{"source": {"namespaces": [platform.ingress_namespace]}}]}],
    }
    assert deny == ([want] if want_deny else [])


def _name(manifest: Manifest) -> str:
    meta = manifest["metadata"]
    return str(meta["name"]) if isinstance(meta, dict) else ""


def test_suspended_dns_points_the_record_at_the_suspended_target() -> None:
    platform = PlatformConfig()
    desired = suspension.dns(_tenant("standard"), platform)
    assert [(r.name, r.content) for r in desired.records] == [
        (f"acme.{platform.base_domain}", f"suspended.{platform.base_domain}")
    ]
    assert f"suspended.{platform.base_domain}" in desired.document
