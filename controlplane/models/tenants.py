"""The tenant file: one tenant per YAML file under the root key `tenant:`.

Rules that need only one field live here (shape, DNS labels, tier); rules that
combine fields or need the platform (regions, PCI level, tier ceilings, base domain)
are in `validating`, and rules across files in `config.loading`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, NewType

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from controlplane.models import platform, quantities
from controlplane.models.platform import Tier

__all__ = [
    "AiSettings",
    "Branding",
    "Compliance",
    "DataImport",
    "Domains",
    "Lifecycle",
    "Limits",
    "Tenant",
    "TenantFile",
    "TenantId",
]

TenantId = NewType("TenantId", str)

DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
Region = Annotated[str, AfterValidator(platform.check_region)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Domains(_Strict):
    """Where the tenant is reachable."""

    subdomain: str | None = None
    custom: tuple[Annotated[str, AfterValidator(platform.normalize_fqdn)], ...] = ()

    @field_validator("subdomain")
    @classmethod
    def _label(cls, value: str | None) -> str | None:
        if value is not None and not DNS_LABEL.match(value):
            msg = "must be a DNS label: lowercase letters, digits and '-', at most 40 characters"
            raise ValueError(msg)
        return value

    @field_validator("custom", mode="before")
    @classmethod
    def _list(cls, value: object) -> object:
        return tuple(value) if isinstance(value, list) else value

    @field_validator("custom")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            msg = "lists the same domain twice"
            raise ValueError(msg)
        return value


class Limits(_Strict):
    """Overrides of the tier's quota, within the tier's maximum."""

    cpu: str | None = None
    memory: str | None = None
    pods: int | None = Field(default=None, ge=1)

    @field_validator("cpu", "memory", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        # YAML reads `cpu: 8` as an int; a quantity is text either way.
        return (
            str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        )

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, value: str | None) -> str | None:
        if value is not None:
            quantities.parse(value)
        return value


class Branding(_Strict):
    """Look of the tenant's storefront."""

    primary_color: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$")
    logo_url: str | None = Field(default=None, pattern=r"^https://\S+$", max_length=2048)


class Compliance(_Strict):
    """Regulatory constraints."""

    pci_dss_level: Literal[1, 2, 3, 4] | None = None
    data_residency: tuple[Region, ...] = ()

    @field_validator("data_residency", mode="before")
    @classmethod
    def _list(cls, value: object) -> object:
        return tuple(value) if isinstance(value, list) else value


class AiSettings(_Strict):
    """AI features of the tenant."""

    llm_provider: str | None = Field(default=None, max_length=64)
    self_hosted_models: bool = False
    agent_memory_ttl: str | None = Field(default=None, pattern=r"^[0-9]+[smhd]$")


class Lifecycle(_Strict):
    """Deletion safeguards, and who may change the tenant's resources."""

    deletion_protection: bool = True
    retention_days: int = Field(default=30, ge=0, le=3650)
    # `observe`: apply and the reconciler report drift and pending changes but never
    # correct them (a maintenance window); `tenantctl pause-reconcile` does the same
    # without editing the file.
    management: Literal["full", "observe"] = "full"


class DataImport(_Strict):
    """Optional initial data import: CSV / JSON Lines files under an S3 prefix or a folder.

    A local folder is `file:///abs/path`, an absolute path or one starting with `./` or
    `../` (relative to the tenant file's folder).
    """

    source: str = Field(
        pattern=r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?|file:///\S*|\.{0,2}/\S*)$"
    )


Scalar = str | int | float | bool


class Tenant(_Strict):
    """One tenant as declared in its file."""

    id: TenantId = Field(description="DNS label, immutable once recorded, unique")
    name: str = Field(min_length=1, max_length=200)
    tier: Tier
    region: Region
    domains: Domains = Field(default_factory=Domains)
    features: dict[str, bool] = Field(default_factory=dict)
    limits: Limits = Field(default_factory=Limits)
    branding: Branding = Field(default_factory=Branding)
    integrations: dict[str, Annotated[str, Field(max_length=128)]] = Field(default_factory=dict)
    compliance: Compliance = Field(default_factory=Compliance)
    ai: AiSettings = Field(default_factory=AiSettings)
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)
    data_import: DataImport | None = None

    @field_validator("id")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not DNS_LABEL.match(value):
            msg = (
                f"'{value}' is not a DNS label: use lowercase letters, digits and '-', "
                "start and end with a letter or digit, at most 40 characters"
            )
            raise ValueError(msg)
        return value

    @field_validator("tier", mode="before")
    @classmethod
    def _tier(cls, value: object) -> Tier:
        return value if isinstance(value, Tier) else platform.parse_tier(value)

    @property
    def subdomain(self) -> str:
        """The label under the platform's base domain (defaults to the id)."""
        return self.domains.subdomain or self.id


class TenantFile(_Strict):
    """The document: everything sits under `tenant:`."""

    tenant: Tenant
