"""Platform-wide settings (`platform.yaml`): what is not per tenant.

Every field has a default so that `tenantctl` works with no platform file at all
(the embedded default: local Postgres, Kubernetes and Cloudflare in render mode).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from controlplane.models import quantities

__all__ = [
    "BackendModes",
    "ClusterConfig",
    "DatabaseProfile",
    "DatabaseSettings",
    "DriverMode",
    "ExportSettings",
    "KubernetesSettings",
    "NodePool",
    "PlatformConfig",
    "QuotaProfile",
    "TerraformState",
    "Tier",
    "TierProfile",
    "check_region",
    "normalize_fqdn",
    "parse_tier",
]

Quantity = Annotated[str, Field(min_length=1, max_length=32)]

_FQDN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# AWS-style region ids: a two-letter geography, an optional partition (gov, iso, isob, ...),
# a compass direction and a number: us-east-1, ap-southeast-2, us-gov-west-1, cn-northwest-1.
_REGION = re.compile(
    r"^[a-z]{2}-(?:(?:gov|iso[a-z]?)-)?(?:central|(?:north|south)?(?:east|west)|north|south)"
    r"-[1-9][0-9]?$"
)


def normalize_fqdn(value: str) -> str:
    """Return `value` as a lowercase ASCII FQDN: IDNA labels as punycode, no trailing dot.

    Raises:
        ValueError: when it is not a name of two or more RFC 1123 labels with a non-numeric TLD.
    """
    name = value.lower().removesuffix(".")
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            name = value  # not encodable: refused below with the name as written
    labels = name.split(".")
    if (
        len(name) > 253
        or len(labels) < 2
        or not all(_FQDN_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        msg = (
            f"'{value}' is not a valid domain name: use dot-separated labels of letters, "
            "digits and '-' (example: shop.acme.com)"
        )
        raise ValueError(msg)
    return name


def check_region(value: str) -> str:
    """Return `value` when it is an AWS-style region id (e.g. us-east-1).

    Raises:
        ValueError: naming the value and the expected shape.
    """
    if not _REGION.match(value):
        msg = (
            f"'{value}' is not a region id: use <geography>-<direction>-<number> "
            "(example: us-east-1, ap-southeast-2, us-gov-west-1)"
        )
        raise ValueError(msg)
    return value


class Tier(StrEnum):
    """Service tier; decides database, compute and network isolation."""

    STANDARD = "standard"
    ENTERPRISE = "enterprise"
    PREMIUM = "premium"


def parse_tier(value: object) -> Tier:
    """Return the tier named by `value` (strict models refuse the plain string YAML gives).

    Raises:
        ValueError: naming the value and the tiers there are.
    """
    if isinstance(value, str) and value in Tier.__members__.values():
        return Tier(value)
    shown = f"'{value}'" if isinstance(value, str) else repr(value)
    msg = f"{shown} is not a tier: use one of standard, enterprise, premium"
    raise ValueError(msg)


class DriverMode(StrEnum):
    """`live` talks to the real system; `render` writes files for GitOps."""

    LIVE = "live"
    RENDER = "render"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_quantity(value: str) -> str:
    quantities.parse(value)
    return value


class QuotaProfile(_Strict):
    """ResourceQuota sizes of a tier."""

    requests_cpu: Quantity
    requests_memory: Quantity
    limits_cpu: Quantity
    limits_memory: Quantity
    pods: int = Field(ge=1)
    services: int = Field(ge=0)
    persistentvolumeclaims: int = Field(ge=0)
    # Node-local scratch space (emptyDir, logs, writable layers) and the total size of
    # persistent volume claims: without a bound a tenant can fill nodes or the storage backend.
    requests_ephemeral_storage: Quantity = "10Gi"
    limits_ephemeral_storage: Quantity = "20Gi"
    requests_storage: Quantity = "100Gi"

    _quantities = field_validator(
        "requests_cpu",
        "requests_memory",
        "limits_cpu",
        "limits_memory",
        "requests_ephemeral_storage",
        "limits_ephemeral_storage",
        "requests_storage",
    )(_check_quantity)


class DatabaseProfile(_Strict):
    """Per-tier limits on the tenant's database role."""

    connection_limit: int = Field(ge=1, le=10_000)
    statement_timeout: str = Field(pattern=r"^[0-9]+(ms|s|min)$")


class TierProfile(_Strict):
    """Everything a tier means: quota, ceilings for overrides, priority, database limits."""

    quota: QuotaProfile
    max_cpu: Quantity
    max_memory: Quantity
    max_pods: int = Field(ge=1)
    priority_class: str
    priority: int
    database: DatabaseProfile

    _quantities = field_validator("max_cpu", "max_memory")(_check_quantity)


def _default_tiers() -> dict[Tier, TierProfile]:
    def profile(scale: int, *, priority: int, conns: int, timeout: str, pvcs: int) -> TierProfile:
        return TierProfile(
            quota=QuotaProfile(
                requests_cpu=str(4 * scale),
                requests_memory=f"{8 * scale}Gi",
                limits_cpu=str(8 * scale),
                limits_memory=f"{16 * scale}Gi",
                pods=50 * scale,
                services=10 * scale,
                persistentvolumeclaims=pvcs,
                requests_ephemeral_storage=f"{10 * scale}Gi",
                limits_ephemeral_storage=f"{20 * scale}Gi",
                requests_storage=f"{100 * scale}Gi",
            ),
            max_cpu=str(8 * scale),
            max_memory=f"{16 * scale}Gi",
            max_pods=50 * scale,
            priority_class="",
            priority=priority,
            database=DatabaseProfile(connection_limit=conns, statement_timeout=timeout),
        )

    tiers = {
        Tier.STANDARD: profile(1, priority=1000, conns=20, timeout="30s", pvcs=5),
        Tier.ENTERPRISE: profile(4, priority=10000, conns=100, timeout="120s", pvcs=20),
        Tier.PREMIUM: profile(16, priority=100000, conns=500, timeout="300s", pvcs=100),
    }
    return {
        tier: p.model_copy(update={"priority_class": f"tenant-{tier.value}"})
        for tier, p in tiers.items()
    }


def _deep_merge(base: dict[str, object], override: dict[object, object]) -> dict[object, object]:
    merged: dict[object, object] = dict(base.items())
    for key, value in override.items():
        below = merged.get(key)
        if isinstance(below, dict) and isinstance(value, dict):
            merged[key] = _deep_merge(below, value)
        else:
            merged[key] = value
    return merged


class NodePool(_Strict):
    """A dedicated node pool: nodes carry this label and taint."""

    label_key: str = "tenantctl.io/node-pool"
    taint_key: str = "tenantctl.io/dedicated"


class ClusterConfig(_Strict):
    """A Kubernetes cluster the platform deploys to, by kube context."""

    context: str = ""
    api_server: str = ""


class KubernetesSettings(_Strict):
    """How tenants map onto Kubernetes: names, network endpoints, secrets, render output."""

    namespace_prefix: str = Field(default="tenant-", pattern=r"^[a-z0-9-]{0,20}$")
    kubeconfig: str = ""
    dedicated_clusters: dict[str, str] = Field(
        default_factory=dict,
        description="premium tenant id -> name in `clusters` (default: `premium-<id>`)",
    )
    force_conflicts: bool = False
    istio_namespace: str = "istio-system"
    dns_namespace: str = "kube-system"
    dns_pod_labels: dict[str, str] = Field(default_factory=lambda: {"k8s-app": "kube-dns"})
    shared_database_cidr: str = "10.20.0.0/24"
    dedicated_database_cidr: str = "10.30.0.0/16"
    database_port: int = Field(default=5432, ge=1, le=65535)
    # Names of the secret store and key prefix, not secrets.
    secret_store: str = "platform-secrets"  # noqa: S105
    secret_key_prefix: str = "tenantctl/tenants"  # noqa: S105
    default_cpu: Quantity = "500m"
    default_memory: Quantity = "512Mi"
    default_request_cpu: Quantity = "100m"
    default_request_memory: Quantity = "128Mi"

    _quantities = field_validator(
        "default_cpu", "default_memory", "default_request_cpu", "default_request_memory"
    )(_check_quantity)


class DatabaseSettings(_Strict):
    """Where tenant databases live (the `database` step's Terraform modules).

    Standard tenants get a schema in the shared Postgres (`shared_database_url_env`,
    default: a `tenantctl_shared` database on the embedded server). Enterprise and premium
    tenants get a dedicated database: on a self-hosted Postgres (`postgres`, the URL in
    `dedicated_server_url_env`, default: the embedded server) or on RDS (`aws`).
    """

    dedicated_backend: Literal["postgres", "aws"] = "postgres"
    dedicated_server_url_env: str = "TENANTCTL_DEDICATED_DATABASE_URL"
    aws_endpoint_url: str = ""  # e.g. a moto server; empty: the real AWS endpoints
    cluster_cidr: str = "10.0.0.0/16"
    vpc_id: str = ""
    subnet_ids: list[str] = Field(default_factory=list)
    premium_vpc_cidr: str = "10.64.0.0/16"
    availability_zones: list[str] = Field(default_factory=list)
    custom_key_store_id: str = ""  # CloudHSM-backed key store of premium tenants' keys
    instance_class: str = "db.t3.medium"
    backup_retention_days: int = Field(default=7, ge=7, le=35)


class TerraformState(_Strict):
    """S3 backend of `terraform_backend: s3` (S3-native lock files, one key per workspace)."""

    bucket: str = ""
    region: str = "us-east-1"
    key_prefix: str = "tenantctl"
    endpoint_url: str = ""


class ExportSettings(_Strict):
    """Where `tenantctl delete` and `export` put tenant exports (docs/lifecycle.md).

    `s3://bucket/prefix/`: objects with SSE-KMS under each tenant's own KMS key (boto3
    finds endpoint and credentials the usual way). Empty: the embedded default, files under
    `<data dir>/exports/` encrypted with a per-tenant data key wrapped by the master key.
    """

    location: str = Field(default="", pattern=r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?)?$")
    region: str = ""  # of the bucket and keys; empty: boto3's default region


class BackendModes(_Strict):
    """Which driver mode each backend uses."""

    kubernetes: DriverMode = DriverMode.RENDER
    cloudflare: DriverMode = DriverMode.RENDER


class PlatformConfig(_Strict):
    """Contents of `platform.yaml` (root key `platform:`)."""

    base_domain: str = "tenants.example.com"
    ingress_target: str = "ingress.tenants.example.com"
    cloudflare_zone_id: str = ""
    # DNS ownership marker on every record we write (like external-dns's txt-owner-id):
    # give each control plane sharing a zone its own value.
    dns_owner_id: str = Field(default="tenantctl", pattern=r"^[a-z0-9][a-z0-9._-]{0,39}$")
    # Requests per 5 minutes this control plane may spend of the token's API allowance
    # (Cloudflare allows 1,200 per user); shared by all tenants and workers.
    cloudflare_request_budget: int = Field(default=1200, ge=10, le=1200)
    # Also write ownership tags on records (record tags need a paid zone plan).
    cloudflare_record_tags: bool = False
    regions: list[Annotated[str, AfterValidator(check_region)]] = Field(
        default_factory=lambda: ["us-east-1", "us-west-2", "eu-west-1"]
    )
    shared_database_url_env: str = "TENANTCTL_SHARED_DATABASE_URL"
    clusters: dict[str, ClusterConfig] = Field(default_factory=lambda: {"shared": ClusterConfig()})
    node_pool: NodePool = Field(default_factory=NodePool)
    ingress_namespace: str = "istio-ingress"
    monitoring_namespace: str = "monitoring"
    tiers: dict[Annotated[Tier, BeforeValidator(parse_tier)], TierProfile] = Field(
        default_factory=_default_tiers
    )
    modes: BackendModes = Field(default_factory=BackendModes)
    terraform_backend: Literal["local", "s3"] = "local"
    terraform_state: TerraformState = Field(default_factory=TerraformState)
    databases: DatabaseSettings = Field(default_factory=DatabaseSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    exports: ExportSettings = Field(default_factory=ExportSettings)
    # Blast-radius guard: an `apply -f DIR` (or reconcile pass) that would delete or
    # downgrade more tenants than this refuses before touching any (`--max-deletions`).
    max_deletions: int = Field(default=1, ge=0)

    @field_validator("base_domain", "ingress_target")
    @classmethod
    def _fqdn(cls, value: str) -> str:
        return normalize_fqdn(value)

    @field_validator("tiers", mode="before")
    @classmethod
    def _merge_tiers(cls, value: object) -> object:
        # A platform file may tune one field of a tier (`tiers.standard.max_cpu`): what it
        # names is laid over the built-in profile, the rest keeps its default.
        if not isinstance(value, dict):
            return value
        defaults = _default_tiers()
        return {
            key: _deep_merge(defaults[key].model_dump(), override)
            if key in defaults and isinstance(override, dict)
            else override
            for key, override in value.items()
        }

    @model_validator(mode="after")
    def _fill_tiers(self) -> PlatformConfig:
        # A platform file may tune one tier; the others keep their defaults.
        defaults = _default_tiers()
        for tier in Tier:
            if tier not in self.tiers:
                self.tiers[tier] = defaults[tier]
        return self
