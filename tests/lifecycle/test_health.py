"""`activate` checks health before a tenant goes active: database, namespace and quota, DNS."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from controlplane import service
from controlplane.engine.steps import Step, StepContext
from controlplane.service import lifecycle
from controlplane.state.store import Store
from tenantctl.main import app
from tests.lifecycle.conftest import TenantFolder

runner = CliRunner()


@pytest.fixture
def onboarded(tenant_folder: TenantFolder) -> tuple[TenantFolder, Step, StepContext, Store]:
    """A created tenant set back to `provisioning`, with its real `activate` step."""
    t = tenant_folder
    result = runner.invoke(app, ["create", "-f", str(t.file)])
    assert result.exit_code == 0, result.output
    platform, [source] = service.inputs.load([t.file])
    session = lifecycle.open_session(out_dir=t.folder.parent / "out")
    [activate] = [s for s in session.steps("onboard", platform) if s.name == "activate"]
    session.store.set_status(t.tenant_id, "provisioning")
    return t, activate, session.context(source, platform), session.store


def _refused(activate: Step, ctx: StepContext) -> str:
    with pytest.raises(service.ControlPlaneError) as caught:
        activate.apply(ctx)
    assert caught.value.retryable  # a lag (DNS, a namespace) gets the engine's retries
    return caught.value.message


def _admin(t: TenantFolder, statement: str) -> None:
    with psycopg.connect(t.shared_url(), autocommit=True) as conn:
        conn.execute(statement)


def test_healthy_tenant_is_activated(
    onboarded: tuple[TenantFolder, Step, StepContext, Store],
) -> None:
    t, activate, ctx, store = onboarded
    result = activate.apply(ctx)
    assert result.outputs == {"health": "namespace and quota, dns, database"}
    assert store.get_tenant(t.tenant_id)["status"] == "active"


@pytest.mark.parametrize(
    ("rendered", "want"),
    [
        ("dns.yaml", "dns: {out}/dns.yaml is missing"),
        ("kubernetes/compute.yaml", "namespace and quota: {out}/kubernetes/compute.yaml"),
    ],
)
def test_a_missing_rendered_file_keeps_the_tenant_inactive(
    onboarded: tuple[TenantFolder, Step, StepContext, Store], rendered: str, want: str
) -> None:
    t, activate, ctx, store = onboarded
    out = (t.folder.parent / "out" / t.tenant_id).resolve()
    path = out / rendered
    text = path.read_text()
    path.unlink()

    assert want.format(out=Path("out").resolve() / t.tenant_id) in _refused(activate, ctx)
    assert store.get_tenant(t.tenant_id)["status"] == "provisioning"

    path.write_text(text)
    activate.apply(ctx)
    assert store.get_tenant(t.tenant_id)["status"] == "active"


def test_app_role_that_cannot_log_in_keeps_the_tenant_inactive(
    onboarded: tuple[TenantFolder, Step, StepContext, Store],
) -> None:
    t, activate, ctx, store = onboarded
    _admin(t, f"ALTER ROLE {t.app_role} NOLOGIN")

    message = _refused(activate, ctx)

    assert f"database: cannot check as {t.app_role}" in message
    assert "not permitted to log in" in message
    assert store.get_tenant(t.tenant_id)["status"] == "provisioning"


def test_rows_of_another_tenant_visible_to_the_app_role_keep_the_tenant_inactive(
    onboarded: tuple[TenantFolder, Step, StepContext, Store],
) -> None:
    t, activate, ctx, store = onboarded
    table = f"{t.schema}.customers"
    # RLS stays forced, but a hand-made policy lets every row through.
    _admin(t, f"DROP POLICY tenant_isolation ON {table}")
    _admin(t, f"CREATE POLICY tenant_isolation ON {table} USING (true)")
    _admin(t, f"INSERT INTO {table} (id, name, tenant_id) VALUES ('9', 'Mallory', 'other')")  # noqa: S608

    message = _refused(activate, ctx)

    assert f"database: {table}: 1 row(s) of other tenants visible" in message
    assert store.get_tenant(t.tenant_id)["status"] == "provisioning"
