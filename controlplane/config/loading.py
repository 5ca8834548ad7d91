"""Load tenant and platform YAML into models, with file/line/field on every problem.

The fast path is PyYAML's C loader plus pydantic; positions are looked up only for
problems. Cross-file rules (duplicate ids, subdomains, custom domains) run over a
whole set before anything is deployed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from controlplane.config import locating
from controlplane.errors import ConfigError, SourceLocation
from controlplane.models import validating
from controlplane.models.platform import PlatformConfig
from controlplane.models.tenants import Tenant, TenantFile

__all__ = [
    "PLATFORM_FILE",
    "TenantSource",
    "find_platform_file",
    "load_platform",
    "load_tenant_text",
    "load_tenants",
    "tenant_files",
]

PLATFORM_FILE = "platform.yaml"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MAX_BYTES = 1_000_000
_MAX_NODES = 100_000

Problems = list[tuple[SourceLocation, str]]


@dataclass(frozen=True)
class TenantSource:
    """A validated tenant with the file it came from (kept for later messages)."""

    tenant: Tenant
    file: str
    text: str

    def locate(self, field: str) -> SourceLocation:
        """Return the location of dotted `field` (e.g. `tenant.id`) in this file."""
        return SourceLocation(self.file, locating.line_of(self.text, _split(field)), field)


def _split(field: str) -> list[object]:
    parts: list[object] = []
    for piece in field.split("."):
        name, _, rest = piece.partition("[")
        parts.append(name)
        if rest:
            parts.append(int(rest.rstrip("]")))
    return parts


def _join(loc: Sequence[object]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _parse(text: str, file: str) -> object:
    if "&" in text:
        _refuse_alias_bombs(text, file)
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - the C *safe* loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(
            [(SourceLocation(file, line, ""), f"invalid YAML: {exc.problem}")]
        ) from exc
    except (yaml.YAMLError, ValueError, TypeError, RecursionError, OverflowError) as exc:
        raise ConfigError([(SourceLocation(file, None, ""), f"invalid YAML: {exc}")]) from exc


def _refuse_alias_bombs(text: str, file: str) -> None:
    """Anchors and aliases may expand exponentially ("billion laughs"): cap the expansion."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except (yaml.YAMLError, ValueError, RecursionError):
        return  # the real parse below reports it with a line
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        if id(node) not in sizes:
            sizes[id(node)] = 0  # cycles count once
            children = node.value if isinstance(node.value, list) else []
            flat = [n for c in children for n in (c if isinstance(c, tuple) else (c,))]
            sizes[id(node)] = 1 + sum(size(child) for child in flat)
        return sizes[id(node)]

    if root is not None and size(root) > _MAX_NODES:
        problem = f"YAML aliases expand to more than {_MAX_NODES} nodes; refusing the file"
        raise ConfigError([(SourceLocation(file, None, ""), problem)])


def _message(error: Any, model: type[BaseModel]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, error["loc"][:-1])
        return f"unknown key (allowed here: {', '.join(allowed)})" if allowed else "unknown key"
    if kind == "missing":
        return "required field is missing"
    text = str(error["msg"])
    return text.removeprefix("Value error, ")


def _allowed_keys(model: type[BaseModel], loc: Sequence[object]) -> list[str]:
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = field.annotation
        # Unwrap `X | None` to X.
        for arg in getattr(current, "__args__", ()):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                current = arg
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []


def _validation_problems(exc: ValidationError, text: str, file: str) -> Problems:
    problems: Problems = []
    for error in exc.errors():
        loc = error["loc"]
        field = _join(loc)
        line = locating.line_of(text, loc)
        problems.append((SourceLocation(file, line, field), _message(error, TenantFile)))
    return problems


def load_tenant_text(text: str, file: str, platform: PlatformConfig) -> TenantSource:
    """Parse and validate one tenant file's text.

    Raises:
        ConfigError: with every problem of the file, each naming file, line and field.
    """
    data = _parse(text, file)
    if not isinstance(data, dict) or "tenant" not in data:
        raise ConfigError(
            [
                (
                    SourceLocation(file, 1, "tenant"),
                    "the file must be a mapping with root key 'tenant:'",
                )
            ]
        )
    try:
        tenant = TenantFile.model_validate(data).tenant
    except ValidationError as exc:
        raise ConfigError(_validation_problems(exc, text, file)) from exc
    source = TenantSource(tenant, file, text)
    problems = validating.check_tenant(tenant, platform)
    if problems:
        raise ConfigError([(source.locate(field), message) for field, message in problems])
    return source


def _read(path: Path) -> str:
    where = SourceLocation(str(path), None, "")
    try:
        with path.open(encoding="utf-8") as handle:
            text = handle.read(_MAX_BYTES + 1)
    except UnicodeDecodeError as exc:
        raise ConfigError([(where, "file is not UTF-8 text")]) from exc
    except OSError as exc:
        raise ConfigError([(where, f"cannot read: {exc.strerror}")]) from exc
    if len(text) > _MAX_BYTES:
        raise ConfigError([(where, "file is larger than 1 MB")])
    return text


def tenant_files(paths: Iterable[Path]) -> list[Path]:
    """Expand directories to their `*.yaml`/`*.yml` files (sorted), skipping platform.yaml."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
            files.extend(f for f in found if f.name != PLATFORM_FILE)
        elif path.exists():
            files.append(path)
        else:
            raise ConfigError([(SourceLocation(str(path), None, ""), "no such file or directory")])
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
    if path is None:
        return PlatformConfig()
    file = str(path)
    text = _read(path)
    data = _parse(text, file)
    if data is None:
        return PlatformConfig()
    if not isinstance(data, dict) or set(data) != {"platform"}:
        raise ConfigError(
            [
                (
                    SourceLocation(file, 1, "platform"),
                    "the file must have the single root key 'platform:'",
                )
            ]
        )
    try:
        return PlatformConfig.model_validate(data["platform"] or {})
    except ValidationError as exc:
        problems: Problems = []
        for error in exc.errors():
            loc = ("platform", *error["loc"])
            problems.append(
                (
                    SourceLocation(file, locating.line_of(text, loc), _join(loc)),
                    _message({**error, "loc": error["loc"]}, PlatformConfig),
                )
            )
        raise ConfigError(problems) from exc


def load_tenants(paths: Iterable[Path], platform: PlatformConfig) -> list[TenantSource]:
    """Load every tenant file under `paths` and apply the cross-file rules.

    Raises:
        ConfigError: listing the problems of all files at once.
    """
    sources: list[TenantSource] = []
    problems: Problems = []
    for path in tenant_files(paths):
        try:
            sources.append(load_tenant_text(_read(path), str(path), platform))
        except ConfigError as exc:
            problems.extend(exc.problems)
    problems.extend(_collisions(sources, platform))
    if problems:
        raise ConfigError(problems)
    return sources


def _collisions(sources: list[TenantSource], platform: PlatformConfig) -> Problems:
    """Duplicate ids, subdomains and hostnames across files (first file wins)."""
    problems: Problems = []
    seen: dict[tuple[str, str], TenantSource] = {}
    for source in sources:
        tenant = source.tenant
        claims: list[tuple[str, str, str]] = [("id", "tenant.id", tenant.id)]
        claims.append(
            ("host", _subdomain_field(source), f"{tenant.subdomain}.{platform.base_domain}")
        )
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
