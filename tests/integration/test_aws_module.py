"""`dedicated-db-aws` applies and destroys against moto's server (slow: one RDS test)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from controlplane.drivers import postgres, terraform
from controlplane.errors import ConflictError
from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant
from controlplane.steps import database

MODULES = Path(__file__).resolve().parents[2] / "terraform" / "modules"
MOTO = Path(sys.executable).with_name("moto_server")


@pytest.fixture
def moto_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The module attaches the AWS-managed enhanced-monitoring policy: moto must know it.
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    proc = subprocess.Popen(
        [str(MOTO), "-H", "127.0.0.1", "-p", str(port)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}.items():
        monkeypatch.setenv(key, value)
    url = f"http://127.0.0.1:{port}"
    assert proc.stderr is not None
    # Ready when the server says it listens (no clock, no polling); its request log is then
    # drained in the background so a full pipe never blocks it.
    for line in proc.stderr:
        if "Running on" in line:
            break
    else:
        pytest.fail(f"moto_server exited ({proc.wait()}) before listening")
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # a loaded machine: do not fail a passed test on it
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_rds_instance_applies_and_destroys_against_moto(moto_url: str, tmp_path: Path) -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=moto_url)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"us-east-1{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in enumerate("ab")
    ]
    platform = PlatformConfig.model_validate(
        {
            "databases": {
                "dedicated_backend": "aws",
                "aws_endpoint_url": moto_url,
                "vpc_id": vpc,
                "subnet_ids": subnets,
            }
        }
    )
    tenant = Tenant.model_validate(
        {
            "id": "rds-one",
            "name": "RDS One",
            "tier": "enterprise",
            "region": "us-east-1",
            "lifecycle": {"deletion_protection": False},
        }
    )
    unit = database.unit_for(tenant, platform)
    assert unit.module == "dedicated-db-aws"
    aws = terraform.aws_target(moto_url)
    driver = terraform.Terraform(tmp_path / "tf", MODULES, {"aws": aws})
    outputs = driver.apply(unit)

    rds = boto3.client("rds", region_name="us-east-1", endpoint_url=moto_url)
    instance = rds.describe_db_instances(DBInstanceIdentifier="tenantctl-rds-one")["DBInstances"][0]
    assert outputs["instance_id"] == "tenantctl-rds-one"
    assert instance["StorageEncrypted"] is True
    assert instance["KmsKeyId"] == outputs["kms_key_arn"]
    assert instance["PubliclyAccessible"] is False
    assert instance["BackupRetentionPeriod"] >= 7
    assert instance["IAMDatabaseAuthenticationEnabled"] is True
    kms = boto3.client("kms", region_name="us-east-1", endpoint_url=moto_url)
    key_id = outputs["kms_key_arn"].rsplit("/", 1)[-1]
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    sg = ec2.describe_security_groups(GroupIds=[outputs["security_group_id"]])["SecurityGroups"][0]
    assert [r["IpRanges"][0]["CidrIp"] for r in sg["IpPermissions"]] == ["10.0.0.0/16"]
    assert_logs_and_key_policy(moto_url, instance, key_id)

    driver.destroy(unit)
    assert rds.describe_db_instances()["DBInstances"] == []
    # Nothing left of the tenant on disk: the empty state goes with its workspace.
    assert not (tmp_path / "tf" / "workspaces" / "rds-one").exists()


def assert_logs_and_key_policy(moto_url: str, instance: dict[str, Any], key_id: str) -> None:
    assert instance["EnabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    assert instance["MonitoringInterval"] == 60
    role = instance["MonitoringRoleArn"].rsplit("/", 1)[-1]
    iam = boto3.client("iam", region_name="us-east-1", endpoint_url=moto_url)
    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonRDSEnhancedMonitoringRole"]
    rds = boto3.client("rds", region_name="us-east-1", endpoint_url=moto_url)
    group = instance["DBParameterGroups"][0]["DBParameterGroupName"]
    parameters = rds.describe_db_parameters(DBParameterGroupName=group, Source="user")
    settings = {p["ParameterName"]: p["ParameterValue"] for p in parameters["Parameters"]}
    assert settings == {
        "rds.force_ssl": "1",
        "log_statement": "ddl",
        "log_min_duration_statement": "1000",
        "log_connections": "1",
        "log_disconnections": "1",
    }
    kms = boto3.client("kms", region_name="us-east-1", endpoint_url=moto_url)
    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == [
        "AccountAdministersTheKey",
        "UseThroughTheTenantsServices",
    ]


@pytest.mark.slow
def test_premium_plans_flow_logs_and_a_default_security_group_that_denies_all(
    moto_url: str, tmp_path: Path
) -> None:
    platform = PlatformConfig.model_validate(
        {
            "databases": {
                "dedicated_backend": "aws",
                "aws_endpoint_url": moto_url,
                "availability_zones": ["us-east-1a", "us-east-1b"],
                "custom_key_store_id": "cks-1234567890abcdef0",
            }
        }
    )
    tenant = Tenant.model_validate(
        {"id": "rds-premium", "name": "Premium", "tier": "premium", "region": "us-east-1"}
    )
    unit = database.unit_for(tenant, platform)
    driver = terraform.Terraform(tmp_path / "tf", MODULES, {"aws": terraform.aws_target(moto_url)})
    workspace = driver.prepare(unit)
    plan = subprocess.run(
        ["terraform", "plan", "-input=false", "-no-color", "-json"],
        cwd=workspace,
        env=driver.environment(unit),
        capture_output=True,
        text=True,
        check=True,
    )
    messages = [json.loads(line) for line in plan.stdout.splitlines()]
    planned = {
        m["change"]["resource"]["addr"].removeprefix("module.database.")
        for m in messages
        if m["type"] == "planned_change"
    }
    assert {
        "aws_flow_log.tenant[0]",
        "aws_cloudwatch_log_group.flow[0]",
        "aws_iam_role_policy.flow_logs[0]",
        "aws_default_security_group.tenant[0]",
    } <= planned


@pytest.mark.slow
def test_s3_backend_keeps_state_and_reports_a_stale_lock(
    moto_url: str, tmp_path: Path, database_url: str
) -> None:
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_url)
    s3.create_bucket(Bucket="tf-state")
    backend = terraform.S3Backend("tf-state", "us-east-1", "tenants", moto_url)
    passwords = postgres.DerivedPasswords(b"k")
    driver = terraform.Terraform(
        tmp_path / "tf",
        MODULES,
        {"shared": terraform.Target(env=postgres.libpq_env(database_url))},
        secrets=lambda t, _m: {
            "app_password_verifier": postgres.scram_verifier(passwords.password(t))
        },
        backend=backend,
        lock_timeout="0s",
    )
    tenant = Tenant.model_validate(
        {"id": "s3-one", "name": "S3", "tier": "standard", "region": "us-east-1"}
    )
    unit = database.unit_for(tenant, PlatformConfig())
    try:
        assert driver.apply(unit)["schema"] == "tenant_s3_one"
        key = "tenants/s3-one/shared-schema.tfstate"
        state = json.loads(s3.get_object(Bucket="tf-state", Key=key)["Body"].read())
        assert state["outputs"]["module"]["value"]["app_role"] == "tenant_s3_one_app"
        assert driver.outputs(unit) == driver.apply(unit)

        # A process killed with kill -9 leaves its S3 lock file behind.
        lock = {"ID": "5f1d0c2a-dead-4bee-8000-00000000beef", "Who": "worker@gone"}
        s3.put_object(Bucket="tf-state", Key=f"{key}.tflock", Body=json.dumps(lock).encode())
        with pytest.raises(ConflictError) as caught:
            driver.apply(unit)
        assert f"force-unlock {lock['ID']}" in caught.value.message
        s3.delete_object(Bucket="tf-state", Key=f"{key}.tflock")  # what force-unlock does
    finally:
        driver.destroy(unit)
