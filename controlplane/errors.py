"""One error hierarchy for the whole control plane.

Every layer raises these; only the shells (CLI, API) turn them into exit codes and
HTTP statuses, so the mapping lives in one place::

    ControlPlaneError          1 / 500  unexpected
    ├── ConfigError            2 / 422  bad YAML, schema or cross-file rule
    ├── NotFoundError          3 / 404  unknown tenant, operation, host
    ├── ConflictError          4 / 409  lock held, name taken, field-manager conflict
    ├── DriverError            5 / 502  an outside system failed
    │   ├── TerraformError
    │   ├── KubernetesError
    │   ├── CloudflareError
    │   ├── AwsError
    │   └── PostgresError
    ├── StepFailedError        6 / 500  a step gave up (permanent error or retries spent)
    │   └── RolledBackError             ... and undid the operation (a tier change's failed
    │                                   verification): the next run starts afresh
    └── AuthError              8 / 401  no valid token (API: unknown, expired, revoked)
        └── ForbiddenError     8 / 403  a valid token that may not do this
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AuthError",
    "AwsError",
    "CloudflareError",
    "ConfigError",
    "ConflictError",
    "ControlPlaneError",
    "DriverError",
    "ForbiddenError",
    "KubernetesError",
    "NotFoundError",
    "PostgresError",
    "RolledBackError",
    "SourceLocation",
    "StepFailedError",
    "TerraformError",
]


@dataclass(frozen=True)
class SourceLocation:
    """Where in a file a problem is: file, 1-based line, dotted field path."""

    file: str
    line: int | None
    field: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}" if self.field else where


class ControlPlaneError(Exception):
    """Root of every error the control plane raises on purpose."""

    exit_code = 1
    http_status = 500
    retryable = False

    def __init__(
        self, message: str, *, retryable: bool | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        if retryable is not None:
            self.retryable = retryable


class ConfigError(ControlPlaneError):
    """Invalid input: each problem names file, line and field."""

    exit_code = 2
    http_status = 422

    def __init__(self, problems: list[tuple[SourceLocation, str]]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"{loc}: {msg}" for loc, msg in problems))


class NotFoundError(ControlPlaneError):
    """The named tenant, operation or host does not exist."""

    exit_code = 3
    http_status = 404


class ConflictError(ControlPlaneError):
    """Someone else holds the lock or the name; wait or resolve the clash.

    A held lock is transient (`retryable=True`): the holder finishes or its lease expires.
    """

    exit_code = 4
    http_status = 409


class DriverError(ControlPlaneError):
    """An outside system failed; `retryable` says whether trying again may help."""

    exit_code = 5
    http_status = 502


class TerraformError(DriverError):
    """terraform exited non-zero or its output could not be read."""


class KubernetesError(DriverError):
    """The Kubernetes API refused or failed a request."""


class CloudflareError(DriverError):
    """The Cloudflare API refused or failed a request."""


class AwsError(DriverError):
    """An AWS API call failed."""


class PostgresError(DriverError):
    """A tenant database statement failed."""


class StepFailedError(ControlPlaneError):
    """A step stopped the operation: permanent error, or retries spent."""

    exit_code = 6
    http_status = 500


class RolledBackError(StepFailedError):
    """A step undid what its operation had done: the operation ends `rolled_back`, and the
    next run starts a new one instead of resuming it."""


class AuthError(ControlPlaneError):
    """No token, or one that is unknown, expired or revoked (the API's 401)."""

    exit_code = 8
    http_status = 401


class ForbiddenError(AuthError):
    """A valid token that may not do this: wrong role, tenant or surface (the API's 403)."""

    http_status = 403
