"""A fresh tenant folder per test (unique id: roles are server-wide), and how to reach it."""

from __future__ import annotations

import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import yaml
from moto.server import ThreadedMotoServer
from psycopg import conninfo, sql

from controlplane.drivers import postgres
from controlplane.drivers.cloudflare import TOKEN_ENV
from tests.conftest import EXAMPLES
from tests.fakes.cloudflare_fixtures import TOKEN
from tests.fakes.kube_fixtures import FakeCluster

CUSTOMERS = 'id,name,tenant_id\n1,Ada,{tid}\n2,Grace,{tid}\n3,"Hopper, Grace",{tid}\n'
ORDERS = "".join(f'{{"id": {n}, "sku": "sku-{n}", "total": {n * 10}}}\n' for n in range(1, 6))
BASE = "tenants.example.com"  # the examples' platform.base_domain


@dataclass(frozen=True)
class TenantFolder:
    """One tenant file (with platform.yaml beside it) and its data folder."""

    tenant_id: str
    folder: Path
    database_url: str
    data_dir: Path

    @property
    def file(self) -> Path:
        return self.folder / f"{self.tenant_id}.yaml"

    @property
    def schema(self) -> str:
        return "tenant_" + self.tenant_id.replace("-", "_")

    @property
    def app_role(self) -> str:
        return f"{self.schema}_app"

    def shared_url(self, **params: str) -> str:
        """The shared tenant database (as admin unless `user` is given)."""
        return conninfo.make_conninfo(self.database_url, **{"dbname": "tenantctl_shared", **params})

    def app_connect(self, *, dedicated: bool = False) -> psycopg.Connection:
        """Log in as the tenant's app role with its derived password."""
        passwords = postgres.DerivedPasswords(postgres.load_master_key(self.data_dir))
        password = passwords.password(self.tenant_id)
        url = self.shared_url(user=self.app_role, password=password)
        if dedicated:  # enterprise: its own database, named like the schema
            url = conninfo.make_conninfo(url, dbname=self.schema)
        return psycopg.connect(url, connect_timeout=5)

    def admin_count(self, table: str) -> int:
        with psycopg.connect(self.shared_url()) as conn:
            query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(self.schema, table))
            row = conn.execute(query).fetchone()
        return int(row[0]) if row else -1

    def checksums(self, *, dedicated: bool = False) -> dict[str, tuple[int, str]]:
        """Rows and an order-independent digest of every table of the tenant (as admin)."""
        url = self.shared_url(dbname=self.schema) if dedicated else self.shared_url()
        sums = {}
        with psycopg.connect(url) as conn:
            tables = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (self.schema,)
            ).fetchall()
            for (table,) in tables:
                query = sql.SQL(
                    "SELECT count(*), md5(string_agg(md5(r::text), '' ORDER BY md5(r::text)))"
                    " FROM {} r"
                ).format(sql.Identifier(self.schema, table))
                count, digest = conn.execute(query).fetchone() or (0, "")
                sums[table] = (int(count), str(digest))
        return sums

    def rendered(self, name: str) -> str:
        return (self.folder.parent / "out" / self.tenant_id / name).read_text()


def write_tenant(
    folder: Path,
    tenant_id: str,
    *,
    tier: str = "standard",
    source: str = "",
    lifecycle: str = "{deletion_protection: false}",
) -> None:
    """A minimal tenant file; `source` becomes `data_import.source` when given."""
    lines = [
        "tenant:",
        f"  id: {tenant_id}",
        f'  name: "Lifecycle {tenant_id}"',
        f"  tier: {tier}",
        "  region: us-east-1",
        f"  lifecycle: {lifecycle}",
    ]
    if source:
        lines.append(f'  data_import: {{source: "{source}"}}')
    (folder / f"{tenant_id}.yaml").write_text("\n".join(lines) + "\n")


def make_tenant_folder(cli_env: dict[str, str], folder: Path, tenant_id: str = "") -> TenantFolder:
    """`folder/<id>.yaml` (platform.yaml beside it) importing `./data/` (customers, orders)."""
    tenant_id = tenant_id or f"lc-{uuid.uuid4().hex[:10]}"
    (folder / "data").mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLES / "platform.yaml", folder / "platform.yaml")
    (folder / "data" / "customers.csv").write_text(CUSTOMERS.format(tid=tenant_id))
    (folder / "data" / "orders.jsonl").write_text(ORDERS)
    (folder / "data" / "README.txt").write_text("not data: ignored")
    write_tenant(folder, tenant_id, source="./data/")
    return folder_tenant(cli_env, folder, tenant_id)


def live_folder(
    cli_env: dict[str, str],
    cluster: FakeCluster,
    zone: str,
    cloudflare_url: str,
    monkeypatch: pytest.MonkeyPatch,
    *,
    clusters: dict[str, str],
) -> Path:
    """A folder with the examples' platform.yaml in live mode on the fake apiserver and the
    Cloudflare emulator; `clusters` maps platform cluster names to kubeconfig contexts."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", cloudflare_url)
    folder = Path(cli_env["TENANTCTL_DATA_DIR"]).parent / "live"
    folder.mkdir()
    document = yaml.safe_load((EXAMPLES / "platform.yaml").read_text())
    document["platform"]["modes"] = {"kubernetes": "live", "cloudflare": "live"}
    document["platform"]["clusters"] = {name: {"context": c} for name, c in clusters.items()}
    document["platform"]["kubernetes"] = {"kubeconfig": str(cluster.kubeconfig)}
    document["platform"]["cloudflare_zone_id"] = zone
    (folder / "platform.yaml").write_text(yaml.safe_dump(document))
    return folder


def folder_tenant(cli_env: dict[str, str], folder: Path, tenant_id: str) -> TenantFolder:
    return TenantFolder(
        tenant_id, folder, cli_env["TENANTCTL_DATABASE_URL"], Path(cli_env["TENANTCTL_DATA_DIR"])
    )


@pytest.fixture
def live_tenant(
    cli_env: dict[str, str],
    kube_apiserver: FakeCluster,
    cloudflare_zone: str,
    cloudflare_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> TenantFolder:
    """An enterprise tenant file with initial data beside a live-mode platform.yaml."""
    clusters = {"shared": "fake", "premium-globex": "fake-premium"}
    folder = live_folder(
        cli_env, kube_apiserver, cloudflare_zone, cloudflare_url, monkeypatch, clusters=clusters
    )
    tenant_id = f"lv-{uuid.uuid4().hex[:10]}"
    (folder / "data").mkdir()
    (folder / "data" / "customers.csv").write_text(CUSTOMERS.format(tid=tenant_id))
    write_tenant(folder, tenant_id, tier="enterprise", source="./data/")
    return folder_tenant(cli_env, folder, tenant_id)


@pytest.fixture
def tenant_folder(cli_env: dict[str, str], tmp_path: Path) -> TenantFolder:
    """`tmp_path/configs/<id>.yaml` importing `./data/` (customers.csv, orders.jsonl)."""
    return make_tenant_folder(cli_env, tmp_path / "configs")


@pytest.fixture
def moto_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's server (S3, KMS) on a free loopback port; boto3 finds it by AWS_ENDPOINT_URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()  # returns once the server accepts requests
    url = f"http://127.0.0.1:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": url,
    }.items():
        monkeypatch.setenv(key, value)
    yield url
    server.stop()
