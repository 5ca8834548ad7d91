"""Load tenant and platform YAML into models, with file/line/field on every problem.

The fast path is PyYAML's C loader plus pydantic; positions are looked up only for
problems. A file's problems are listed all at once: duplicate keys, schema errors, and
the platform rules run on whatever parsed. Cross-file rules (duplicate ids, subdomains,
custom domains) run over a whole set before anything is deployed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from controlplane.config import explaining, locating, parsing
from controlplane.errors import ConfigError, SourceLocation
from controlplane.models import validating
from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant, TenantFile

__all__ = [
    "PLATFORM_FILE",
    "Loaded",
    "PlatformSource",
    "TenantSource",
    "find_platform",
    "find_platform_file",
    "load",
    "load_platform",
    "load_tenant_text",
    "load_tenants",
    "tenant_files",
]

PLATFORM_FILE = "platform.yaml"
_TENANT_PATTERNS = ("*.yaml", "*.yml")
# Stand-ins for required fields that did not parse, so the other rules can still run;
# `validating` skips every rule that reads a stand-in.
_STAND_INS = {"id": "unknown", "name": "unknown", "tier": "standard", "region": "us-east-1"}

Problems = parsing.Problems


@dataclass(frozen=True)
class TenantSource:
    """A validated tenant with the file it came from (kept for later messages)."""

    tenant: Tenant
    file: str
    text: str

    def locate(self, field: str) -> SourceLocation:
        """Return the location of dotted `field` (e.g. `tenant.id`) in this file."""
        return SourceLocation(self.file, locating.line_of(self.text, _split(field)), field)


@dataclass(frozen=True)
class PlatformSource:
    """The platform settings in force and where they came from.

    `uses_defaults` is True when no platform file was found (`file` is None) or it was
    empty; `notices` then says so, and which built-in defaults are in force, for the
    shell to print as a warning (it is not an error).
    """

    config: PlatformConfig
    file: str | None
    uses_defaults: bool = False
    notices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Loaded:
    """A validated set: the platform and every tenant file under the given paths."""

    platform: PlatformSource
    tenants: list[TenantSource]


def _split(field: str) -> list[object]:
    parts: list[object] = []
    for piece in field.split("."):
        name, _, rest = piece.partition("[")
        parts.append(name)
        if rest:
            parts.append(int(rest.rstrip("]")))
    return parts


def load_tenant_text(text: str, file: str, platform: PlatformConfig) -> TenantSource:
    """Parse and validate one tenant file's text.

    Raises:
        ConfigError: with every problem of the file, each naming file, line and field.
    """
    return _load_tenant_text(text, file, platform, platform_known=True)


def _load_tenant_text(
    text: str, file: str, platform: PlatformConfig, *, platform_known: bool
) -> TenantSource:
    data, problems = parsing.parse(text, file)
    if not isinstance(data, dict) or "tenant" not in data:
        problem = "the file must be a mapping with root key 'tenant:'"
        raise ConfigError([*problems, (SourceLocation(file, 1, "tenant"), problem)])
    try:
        tenant, unknown = TenantFile.model_validate(data).tenant, frozenset[str]()
    except ValidationError as exc:
        problems += explaining.problems_of(exc, text, file, model=TenantFile, prefix=())
        salvaged = _salvage(data["tenant"], exc)
        if salvaged is None:
            raise ConfigError(problems) from exc
        tenant, unknown = salvaged
    source = TenantSource(tenant, file, text)
    if not platform_known:
        unknown |= {validating.PLATFORM}
    for field, message in validating.check_tenant(tenant, platform, unknown=unknown):
        problems.append((source.locate(field), message))
    if problems:
        raise ConfigError(sorted(problems, key=lambda problem: problem[0].line or 0))
    return source


def _salvage(raw: object, exc: ValidationError) -> tuple[Tenant, frozenset[str]] | None:
    """The tenant without its refused values, and the required fields standing in for them."""
    if not isinstance(raw, dict):
        return None
    pruned = copy.deepcopy(raw)
    for error in exc.errors():
        _prune(pruned, error["loc"][1:])
    unknown = frozenset(name for name in _STAND_INS if name not in pruned)
    pruned.update({name: _STAND_INS[name] for name in unknown})
    try:
        return Tenant.model_validate(pruned), unknown
    except ValidationError:
        return None  # nothing trustworthy is left to check: the schema problems stand alone


def _prune(tree: dict[object, object], loc: Sequence[object]) -> None:
    """Delete the mapping entry holding the error at `loc` (a refused list goes whole)."""
    keys = []
    for part in loc:
        if not isinstance(part, str) or part == "[key]":
            break
        keys.append(part)
    node: object = tree
    for key in keys[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if keys and isinstance(node, dict):
        node.pop(keys[-1], None)


def tenant_files(paths: Iterable[Path]) -> list[Path]:
    """Expand directories to their `*.yaml`/`*.yml` files (sorted), skipping platform.yaml.

    Raises:
        ConfigError: a path does not exist, or a directory holds no tenant file.
    """
    files: list[Path] = []
    problems: Problems = []
    for path in paths:
        where = SourceLocation(str(path), None, "")
        if path.is_dir():
            found = sorted(f for pattern in _TENANT_PATTERNS for f in path.glob(pattern))
            tenants = [f for f in found if f.name != PLATFORM_FILE]
            if not tenants:
                problems.append((where, "no tenant files (*.yaml, *.yml) in this directory"))
            files.extend(tenants)
        elif path.exists():
            files.append(path)
        else:
            problems.append((where, "no such file or directory"))
    if problems:
        raise ConfigError(problems)
    return files


def find_platform_file(paths: Iterable[Path]) -> Path | None:
    """Return the platform.yaml beside the first tenant path, if there is one."""
    for path in paths:
        folder = path if path.is_dir() else path.parent
        candidate = folder / PLATFORM_FILE
        if candidate.is_file():
            return candidate
    return None


def load_platform(path: Path | None) -> PlatformConfig:
    """Load `platform.yaml` (root key `platform:`); defaults when `path` is None."""
    return _platform_source(path).config


def find_platform(paths: Sequence[Path], platform_file: Path | None = None) -> PlatformSource:
    """Load `platform_file`, else the platform.yaml beside `paths`, else the built-in defaults.

    Raises:
        ConfigError: the platform file is invalid (every problem of it at once).
    """
    path = platform_file or find_platform_file(paths)
    if path is not None:
        return _platform_source(path)
    folders = sorted({str(p if p.is_dir() else p.parent) for p in paths})
    beside = ", ".join(folders) or "the tenant files"
    notice = f"no {PLATFORM_FILE} found beside {beside}: using built-in defaults ({_summary()})"
    return PlatformSource(PlatformConfig(), None, uses_defaults=True, notices=(notice,))


def _summary(config: PlatformConfig | None = None) -> str:
    """The defaults that matter most, as `key value` pairs."""
    config = config or PlatformConfig()
    return (
        f"base_domain {config.base_domain}, ingress_target {config.ingress_target}, "
        f"regions {', '.join(config.regions)}, kubernetes {config.modes.kubernetes.value}, "
        f"cloudflare {config.modes.cloudflare.value}, terraform_backend {config.terraform_backend}"
    )


def _platform_source(path: Path | None) -> PlatformSource:
    if path is None:
        return PlatformSource(PlatformConfig(), None, uses_defaults=True)
    file = str(path)
    text = parsing.read(path)
    data, problems = parsing.parse(text, file)
    if data is None:
        notice = f"{file} is empty: using built-in defaults ({_summary()})"
        return PlatformSource(PlatformConfig(), file, uses_defaults=True, notices=(notice,))
    if not isinstance(data, dict) or set(data) != {"platform"}:
        problem = "the file must have the single root key 'platform:'"
        raise ConfigError([*problems, (SourceLocation(file, 1, "platform"), problem)])
    try:
        config = PlatformConfig.model_validate(data["platform"] or {})
    except ValidationError as exc:
        problems += explaining.problems_of(
            exc, text, file, model=PlatformConfig, prefix=("platform",)
        )
        raise ConfigError(sorted(problems, key=lambda p: p[0].line or 0)) from exc
    if problems:
        raise ConfigError(problems)
    return PlatformSource(config, file)


def load(paths: Sequence[Path], platform_file: Path | None = None) -> Loaded:
    """Load the platform and every tenant under `paths`, listing all their problems at once.

    When the platform file itself is invalid, the tenant files are still checked (against
    the built-in defaults, with the rules that depend on the platform left out), so one run
    names every bad file.

    Raises:
        ConfigError: every problem of the platform file and of each tenant file.
    """
    try:
        platform = find_platform(paths, platform_file)
    except ConfigError as exc:
        try:
            _load_tenants(paths, PlatformConfig(), platform_known=False)
        except ConfigError as tenants_exc:
            raise ConfigError([*exc.problems, *tenants_exc.problems]) from exc
        raise
    return Loaded(platform, load_tenants(paths, platform.config))


def load_tenants(paths: Iterable[Path], platform: PlatformConfig) -> list[TenantSource]:
    """Load every tenant file under `paths` and apply the cross-file rules.

    Raises:
        ConfigError: listing the problems of all files at once.
    """
    return _load_tenants(paths, platform, platform_known=True)


def _load_tenants(
    paths: Iterable[Path], platform: PlatformConfig, *, platform_known: bool
) -> list[TenantSource]:
    sources: list[TenantSource] = []
    problems: Problems = []
    for path in tenant_files(paths):
        try:
            text = parsing.read(path)
            sources.append(
                _load_tenant_text(text, str(path), platform, platform_known=platform_known)
            )
        except ConfigError as exc:
            problems.extend(exc.problems)
    base_domain = platform.base_domain if platform_known else "<base_domain>"
    problems.extend(_collisions(sources, base_domain))
    if problems:
        raise ConfigError(problems)
    return sources


def _collisions(sources: list[TenantSource], base_domain: str) -> Problems:
    """Duplicate ids, subdomains and hostnames across files (first file wins)."""
    problems: Problems = []
    seen: dict[tuple[str, str], TenantSource] = {}
    for source in sources:
        tenant = source.tenant
        claims: list[tuple[str, str, str]] = [("id", "tenant.id", tenant.id)]
        claims.append(("host", _subdomain_field(source), f"{tenant.subdomain}.{base_domain}"))
        claims += [
            ("host", f"tenant.domains.custom[{i}]", name)
            for i, name in enumerate(tenant.domains.custom)
        ]
        for kind, field, value in claims:
            first = seen.setdefault((kind, value), source)
            if first is not source:
                what = "tenant id" if kind == "id" else "hostname"
                problems.append(
                    (source.locate(field), f"{what} '{value}' is already claimed by {first.file}")
                )
    return problems


def _subdomain_field(source: TenantSource) -> str:
    return "tenant.domains.subdomain" if source.tenant.domains.subdomain else "tenant.id"
