"""Initial data from an S3 prefix (moto's server), through `tenantctl create`."""

from __future__ import annotations

import boto3  # type: ignore[import-untyped]
import pytest
from typer.testing import CliRunner

from tenantctl.main import app
from tests.lifecycle.conftest import CUSTOMERS, ORDERS, TenantFolder, write_tenant

runner = CliRunner()
BUCKET = "lc-initial-data"


def test_create_imports_the_files_directly_under_the_prefix(
    tenant_folder: TenantFolder, moto_url: str
) -> None:
    t = tenant_folder
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    prefix = f"{t.tenant_id}/initial/"
    objects = {
        "customers.csv": CUSTOMERS.format(tid=t.tenant_id),
        "orders.jsonl": ORDERS,
        "notes.txt": "not data",
        "old/orders.jsonl": ORDERS,  # below the prefix's own level: not read
    }
    for name, body in objects.items():
        s3.put_object(Bucket=BUCKET, Key=prefix + name, Body=body.encode())
    write_tenant(t.folder, t.tenant_id, source=f"s3://{BUCKET}/{prefix}")

    result = runner.invoke(app, ["create", "-f", str(t.file)])

    assert result.exit_code == 0, result.output
    assert (t.admin_count("customers"), t.admin_count("orders")) == (3, 5)
    with t.app_connect() as conn:
        log = conn.execute("SELECT file, rows FROM tenantctl_imports ORDER BY 1").fetchall()
    assert log == [("customers.csv", 3), ("orders.jsonl", 5)]


@pytest.mark.usefixtures("moto_url")
def test_a_missing_bucket_fails_the_import_with_exit_5(tenant_folder: TenantFolder) -> None:
    t = tenant_folder
    write_tenant(t.folder, t.tenant_id, source="s3://no-such-bucket/initial/")

    result = runner.invoke(app, ["create", "-f", str(t.file)])

    assert result.exit_code == 5
    assert "S3 list s3://no-such-bucket/initial/: NoSuchBucket" in result.output
