"""Delete and purge in live mode: the fake kube-apiserver, the Cloudflare emulator, a
dedicated database through terraform, and the export in S3 under the tenant's own KMS
key (moto's server).

An enterprise tenant with a custom hostname and deletion protection on: `delete --force`
writes its export with SSE-KMS under `alias/tenantctl/<id>`; `purge` removes the
namespace and its objects, the CNAME and the custom hostname, the database and its
roles, and schedules the key's deletion. What remains is the export's objects, which
the state store's export record names.
"""

from __future__ import annotations

import json

import boto3  # type: ignore[import-untyped]
import psycopg
import pytest
import yaml

from controlplane.drivers import exports
from tests.fakes.cloudflare_api import CloudflareEmulator
from tests.fakes.kube_fixtures import FakeCluster
from tests.lifecycle.conftest import BASE, TenantFolder
from tests.lifecycle.test_delete import as_json, tenantctl

pytestmark = pytest.mark.slow
BUCKET = "lc-exports"


@pytest.mark.usefixtures("moto_url")
def test_delete_and_purge_live(
    live_tenant: TenantFolder,
    kube_apiserver: FakeCluster,
    cloudflare_emulator: CloudflareEmulator,
    cloudflare_zone: str,
) -> None:
    t = live_tenant
    platform = yaml.safe_load((t.folder / "platform.yaml").read_text())
    platform["platform"]["exports"] = {"location": f"s3://{BUCKET}/exports/"}
    (t.folder / "platform.yaml").write_text(yaml.safe_dump(platform))
    custom = f"shop-{t.tenant_id}.example.org"
    spec = yaml.safe_load(t.file.read_text())
    spec["tenant"]["domains"] = {"custom": [custom]}
    spec["tenant"]["lifecycle"] = {"deletion_protection": True, "retention_days": 0}
    t.file.write_text(yaml.safe_dump(spec))
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    kms = boto3.client("kms")
    assert tenantctl("create", "-f", str(t.file))[0] == 0
    namespace = f"tenant-{t.tenant_id}"
    assert kube_apiserver.store.get("Namespace", namespace) is not None
    assert [h["hostname"] for h in cloudflare_emulator.hostnames(cloudflare_zone)] == [custom]
    rows = t.checksums(dedicated=True)

    code, output = tenantctl("delete", t.tenant_id, "--force", "--yes")

    assert code == 0, output
    (export,) = json.loads(tenantctl("describe", t.tenant_id, "-o", "json")[1])["exports"]
    assert export["location"] == f"s3://{BUCKET}/exports/{t.tenant_id}/{export['id']}/"
    key = kms.describe_key(KeyId=exports.key_alias(t.tenant_id))["KeyMetadata"]
    prefix = f"exports/{t.tenant_id}/{export['id']}/"
    for name in ("data.dump", "manifest.json"):
        head = s3.head_object(Bucket=BUCKET, Key=prefix + name)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] in (key["Arn"], key["KeyId"])
    assert t.checksums(dedicated=True) == rows

    code, output = tenantctl("purge", t.tenant_id, "--yes")

    assert code == 0, output
    assert as_json("get", t.tenant_id)["status"] == "purged"
    # Kubernetes: the namespace and every object the tenant had in it.
    assert kube_apiserver.store.get("Namespace", namespace) is None
    for kind in ("NetworkPolicy", "ConfigMap", "Secret", "ResourceQuota", "AuthorizationPolicy"):
        assert kube_apiserver.store.objects(kind, namespace) == []
    # DNS: the CNAME and the custom hostname.
    names = {r["name"] for r in cloudflare_emulator.records(cloudflare_zone)}
    assert f"{t.tenant_id}.{BASE}" not in names
    assert cloudflare_emulator.hostnames(cloudflare_zone) == []
    # Postgres: the dedicated database and both roles.
    with psycopg.connect(t.shared_url()) as conn:
        assert (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (t.schema,)).fetchall()
            == []
        )
        roles = conn.execute("SELECT 1 FROM pg_roles WHERE rolname LIKE %s", (t.schema + "%",))
        assert roles.fetchall() == []
    # KMS: the tenant's key pending deletion, its alias gone.
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    aliases = {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
    assert exports.key_alias(t.tenant_id) not in aliases
    # S3: only the export the record names, now unreadable without its key.
    listed = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert sorted(o["Key"] for o in listed) == [prefix + "data.dump", prefix + "manifest.json"]
    (receipt,) = [
        e
        for e in as_json("audit", "--tenant", t.tenant_id, "--limit", "500")
        if e["action"] == "tenant.purged"
    ]
    assert receipt["detail"]["export"]["checksum"] == export["checksum"]
    assert key["KeyId"] in receipt["detail"]["key"]
    assert sorted(receipt["detail"]["hostnames"]) == sorted([f"{t.tenant_id}.{BASE}", custom])
