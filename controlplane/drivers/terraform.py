"""Terraform through one `run()` and one error classifier, one workspace per tenant.

Why a small runner of our own beside python-terraform: that library is unmaintained, has
no `-json` support and passes variables on the command line (`-var`), where secrets would
show in `ps`. Here every call goes through `SubprocessRunner.run()` (which also counts the
processes it starts, for the no-op benchmark), every failure through `classify()`, and
secrets only through `TF_VAR_` environment variables of sensitive variables.

Least privilege: terraform and what it starts (`local-exec` runs psql) see an environment
built from an allow-list — locale, PATH/HOME/TMPDIR, proxies, TLS roots, TF_LOG*, the
variables a target names (`Target.inherit`: AWS_* for the AWS provider) and the target's
own settings and secrets — never the control plane's own (TENANTCTL_MASTER_KEY,
TENANTCTL_DATABASE_URL, CLOUDFLARE_API_TOKEN, ...).

Progress: `-json` runs are read line by line as terraform writes them, each UI message
passed to `on_event` as a `TerraformEvent`, so a 20-minute RDS apply is not silent.

Layout under `root` (the data dir's `terraform/`):
    terraformrc                   CLI config: filesystem mirror + shared plugin cache
    plugin-cache/                 providers, installed once and linked into workspaces
    workspaces/<tenant>/<module>/ main.tf.json (the module call), .terraform/, state
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

from controlplane.errors import ConflictError, TerraformError
from controlplane.models.terraform import TerraformEvent, TerraformUnit

__all__ = [
    "CommandResult",
    "PlanSummary",
    "S3Backend",
    "SubprocessRunner",
    "Target",
    "Terraform",
    "aws_target",
    "classify",
    "cli_config",
]

log = logging.getLogger(__name__)

DEFAULT_MIRROR = "/opt/tf-plugins"
AWS_PROVIDER_VERSION = "5.100.0"  # the version in the mirror
MODULE = "database"  # name of the module call in every workspace
_STREAMED = ("plan", "apply", "destroy")  # commands whose -json output is a UI stream
_LOCK_ID = re.compile(r"^\s*ID:\s*(\S+)", re.MULTILINE)
_LOCK_WHO = re.compile(r"^\s*Who:\s*(.+)$", re.MULTILINE)
_TRANSIENT = (
    "connection refused",
    "connection reset",
    "i/o timeout",
    "tls handshake timeout",
    "throttling",
    "requestlimitexceeded",
    "too many requests",
    "could not connect to server",
    "the database system is starting up",
    "too many connections",
    # Two modules' SQL changing one shared catalog row at once (GRANT/REVOKE on the same
    # database from two sessions): Postgres refuses the second; the idempotent SQL re-runs.
    "tuple concurrently updated",
    "deadlock detected",
)


@dataclass(frozen=True)
class CommandResult:
    """What one terraform process did."""

    args: tuple[str, ...]
    stdout: str
    stderr: str
    code: int


@dataclass(frozen=True)
class PlanSummary:
    """`terraform plan -json`, reduced: counts and (action, address) per resource."""

    add: int = 0
    change: int = 0
    remove: int = 0
    changes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Target:
    """Where a module's resources live: environment for terraform, provider blocks.

    `env` carries connection settings and secrets (libpq PG*); it only ever reaches the
    terraform process environment. `inherit` names the variables of the control plane's
    own environment the target's provider needs (a trailing `_` names a prefix: `AWS_`).
    `providers(region)` returns the root `provider` block (JSON syntax) for a region.
    """

    env: Mapping[str, str] = field(default_factory=dict)
    providers: Callable[[str], Mapping[str, object]] = lambda _region: {}
    required_providers: Mapping[str, object] = field(default_factory=dict)
    inherit: tuple[str, ...] = ()


_AWS_SERVICES = ("ec2", "iam", "kms", "logs", "rds", "secretsmanager", "sts")
# The AWS provider and the S3 backend find credentials, profile and region here.
_AWS_AMBIENT = ("AWS_",)
# What terraform and its local-exec children may see of the control plane's environment.
_ALLOWED = (
    *("PATH", "HOME", "TMPDIR", "USER", "LOGNAME", "TZ", "LANG", "LANGUAGE", "LC_"),
    *("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"),
    *("SSL_CERT_FILE", "SSL_CERT_DIR", "TF_LOG", "TF_LOG_"),
)


def _allowed(name: str, allow: Sequence[str]) -> bool:
    """`name` is listed, or starts with a listed prefix (one ending in `_`)."""
    return any(name.startswith(a) if a.endswith("_") else name == a for a in allow)


def aws_target(endpoint_url: str = "") -> Target:
    """The AWS provider (from the mirror) in each tenant's region.

    `endpoint_url` sends every service the modules use to one AWS-compatible endpoint
    (a moto server in tests) and skips the checks that need a real AWS account.
    """

    def providers(region: str) -> dict[str, object]:
        settings: dict[str, object] = {"region": region}
        if endpoint_url:
            settings.update(
                skip_credentials_validation=True,
                skip_requesting_account_id=True,
                skip_metadata_api_check=True,
                endpoints=dict.fromkeys(_AWS_SERVICES, endpoint_url),
            )
        return {"aws": settings}

    required = {"aws": {"source": "hashicorp/aws", "version": AWS_PROVIDER_VERSION}}
    return Target(providers=providers, required_providers=required, inherit=_AWS_AMBIENT)


@dataclass(frozen=True)
class S3Backend:
    """Remote state with S3-native locking (`use_lockfile`), one key per workspace."""

    bucket: str
    region: str
    key_prefix: str = "tenantctl"
    endpoint_url: str = ""

    def block(self, tenant_id: str, module: str) -> dict[str, object]:
        """The `backend "s3"` settings for one workspace."""
        settings: dict[str, object] = {
            "bucket": self.bucket,
            "key": f"{self.key_prefix}/{tenant_id}/{module}.tfstate",
            "region": self.region,
            "encrypt": True,
            "use_lockfile": True,
        }
        if self.endpoint_url:  # an S3-compatible store (MinIO, moto): no AWS account checks
            settings.update(
                endpoints={"s3": self.endpoint_url},
                use_path_style=True,
                skip_credentials_validation=True,
                skip_requesting_account_id=True,
                skip_metadata_api_check=True,
            )
        return settings


def cli_config(mirror: str, plugin_cache: Path | None) -> str:
    """Terraform CLI config: providers only from the filesystem mirror, cached once."""
    lines = [
        "provider_installation {",
        "  filesystem_mirror {",
        f'    path    = "{mirror}"',
        '    include = ["registry.terraform.io/*/*"]',
        "  }",
        '  direct {\n    exclude = ["registry.terraform.io/*/*"]\n  }',
        "}",
    ]
    if plugin_cache is not None:
        lines.append(f'plugin_cache_dir = "{plugin_cache}"')
        # Workspaces have no lock file of their own; let them use the cache anyway.
        lines.append("plugin_cache_may_break_dependency_lock_file = true")
    return "\n".join(lines) + "\n"


@dataclass
class SubprocessRunner:
    """Runs the terraform binary; the one place that starts processes."""

    binary: str = "terraform"
    timeout: float = 3600.0
    started: int = 0
    _count_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def run(
        self,
        args: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        on_line: Callable[[str], None] | None = None,
    ) -> CommandResult:
        """Run `terraform ARGS` in `cwd`; never raises on a non-zero exit.

        Stdout is read as terraform writes it: `on_line` sees each line (without its
        newline) while the process runs, before `run` returns.
        """
        with self._count_lock:
            self.started += 1
        argv = (self.binary, *args)
        try:
            process = subprocess.Popen(  # noqa: S603 - fixed binary, arguments built here
                argv,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        except FileNotFoundError as exc:
            msg = f"terraform binary '{self.binary}' not found: install Terraform >= 1.5"
            raise TerraformError(msg) from exc
        with process:
            stdout, stderr, expired = self._collect(process, on_line or _ignore)
        if expired:
            msg = f"terraform {args[0]} in {cwd} timed out after {self.timeout:.0f}s"
            raise TerraformError(msg, retryable=True)
        return CommandResult(argv, stdout, stderr, process.returncode)

    def _collect(
        self, process: subprocess.Popen[str], on_line: Callable[[str], None]
    ) -> tuple[str, str, bool]:
        """Stdout line by line (a thread drains stderr); kill the process at the timeout."""
        expired = threading.Event()
        timer = threading.Timer(self.timeout, _expire, args=(process, expired))
        timer.daemon = True
        errors: list[str] = []
        drain = threading.Thread(target=_read_into, args=(process.stderr, errors), daemon=True)
        lines: list[str] = []
        timer.start()
        drain.start()
        try:
            for line in cast("IO[str]", process.stdout):
                lines.append(line)
                on_line(line.rstrip("\n"))
        except BaseException:
            process.kill()  # a failing callback must not leave terraform running
            raise
        finally:
            process.wait()
            timer.cancel()
            drain.join()
        return "".join(lines), "".join(errors), expired.is_set()


def _expire(process: subprocess.Popen[str], expired: threading.Event) -> None:
    expired.set()
    process.kill()


def _read_into(stream: IO[str], into: list[str]) -> None:
    into.append(stream.read())


def _ignore(_item: object) -> None:
    """The default callback."""


def _json_lines(text: str) -> Iterator[dict[str, Any]]:
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def _diagnostics(result: CommandResult) -> str:
    """Error diagnostics of a `-json` run (summary: detail), else the stderr tail."""
    found = [
        f"{d.get('summary', '')}: {d.get('detail', '')}".strip(": ")
        for msg in _json_lines(result.stdout)
        if msg.get("type") == "diagnostic"
        and (d := msg.get("diagnostic", {})).get("severity") == "error"
    ]
    text = "\n".join(found) or result.stderr.strip() or result.stdout.strip()
    return text[-2000:]


def classify(result: CommandResult, *, workspace: Path) -> ConflictError | TerraformError:
    """Turn a failed run into a typed error that says what to do."""
    text = _diagnostics(result)
    command = result.args[1] if len(result.args) > 1 else "terraform"
    if "Error acquiring the state lock" in text or "state lock" in text.lower():
        lock_id = _LOCK_ID.search(text) or _LOCK_ID.search(result.stderr)
        who = _LOCK_WHO.search(text)
        ident = lock_id.group(1) if lock_id else "<ID from the lock info>"
        holder = f" held by {who.group(1).strip()}" if who else ""
        return ConflictError(
            f"terraform state in {workspace} is locked (lock id {ident}{holder}). "
            "If a terraform process is still running, wait for it; if it was killed, clear the "
            f"stale lock with `terraform -chdir={workspace} force-unlock {ident}` and re-run "
            "(see docs/database.md)"
        )
    transient = any(marker in text.lower() for marker in _TRANSIENT)
    return TerraformError(f"terraform {command} failed in {workspace}: {text}", retryable=transient)


def _escape(value: object) -> object:
    """Keep input strings literal: `${` would be a template in Terraform JSON."""
    if isinstance(value, str):
        return value.replace("${", "$${").replace("%{", "%%{")
    if isinstance(value, list | tuple):
        return [_escape(v) for v in value]
    return value


def _tree_hash(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(
        p for p in directory.rglob("*") if p.is_file() and ".terraform" not in p.parts
    ):
        digest.update(str(path.relative_to(directory)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass
class Terraform:
    """Per-tenant workspaces of the project's modules, driven by the terraform CLI.

    `lock_timeout` is terraform's `-lock-timeout` for a workspace's state; `init_lock_timeout`
    (seconds) bounds the wait for the plugin-cache lock `init` takes, after which a
    `ConflictError` names the holder (`holder`, e.g. the service's USER/HOST/PID/ID, is
    written into the lock file). `on_event` receives every `-json` UI message as a
    `TerraformEvent` while terraform runs, from the thread running it.
    """

    root: Path
    modules_dir: Path
    targets: Mapping[str, Target]
    secrets: Callable[[str, str], Mapping[str, str]] = lambda _tenant, _module: {}
    backend: S3Backend | None = None
    mirror: str = DEFAULT_MIRROR
    runner: SubprocessRunner = field(default_factory=SubprocessRunner)
    lock_timeout: str = "5s"
    init_lock_timeout: float = 30.0
    holder: str = ""
    on_event: Callable[[TerraformEvent], None] = _ignore
    _versions: dict[str, str] = field(default_factory=dict, repr=False)

    def module_version(self, module: str) -> str:
        """Content hash of a module's files (part of the database step's fingerprint)."""
        if module not in self._versions:
            self._versions[module] = _tree_hash(self._module_dir(module))[:16]
        return self._versions[module]

    def workspace(self, tenant_id: str, module: str) -> Path:
        """The working directory (and local state) of one tenant's module."""
        return self.root / "workspaces" / tenant_id / module

    def environment(self, unit: TerraformUnit) -> dict[str, str]:
        """Process environment for terraform: allowed ambient variables, CLI config, the
        target's settings and TF_VAR_ secrets — nothing else of the control plane's."""
        target = self._target(unit)
        allow = (*_ALLOWED, *target.inherit, *(_AWS_AMBIENT if self.backend else ()))
        env = {k: v for k, v in os.environ.items() if _allowed(k, allow)}
        env.update(
            TF_CLI_CONFIG_FILE=str(self._cli_config()),
            TF_IN_AUTOMATION="1",
            TF_INPUT="0",
            CHECKPOINT_DISABLE="1",
        )
        env.update(target.env)
        for name, value in self.secrets(unit.tenant_id, unit.module).items():
            env[f"TF_VAR_{name}"] = value
        return env

    def plan(self, unit: TerraformUnit) -> PlanSummary:
        """What `apply` would change. A workspace never applied costs no process."""
        never_applied = _local_state(self.workspace(unit.tenant_id, unit.module)) is None
        if self.backend is None and never_applied:
            return PlanSummary(add=1, changes=(("create", f"module.{MODULE} ({unit.module})"),))
        workspace = self.prepare(unit)
        result = self._run(
            workspace, unit, "plan", "-input=false", "-json", f"-lock-timeout={self.lock_timeout}"
        )
        changes = tuple(
            (msg["change"]["action"], msg["change"]["resource"]["addr"])
            for msg in _json_lines(result.stdout)
            if msg.get("type") == "planned_change"
        )
        summary: dict[str, int] = next(
            (m["changes"] for m in _json_lines(result.stdout) if m.get("type") == "change_summary"),
            {},
        )
        return PlanSummary(
            summary.get("add", 0), summary.get("change", 0), summary.get("remove", 0), changes
        )

    def apply(self, unit: TerraformUnit, *, replace: Sequence[str] = ()) -> dict[str, str]:
        """Converge the workspace; `replace` names module resources to re-create.

        Returns:
            The module's outputs.
        """
        workspace = self.prepare(unit)
        args = [
            "apply",
            "-auto-approve",
            "-input=false",
            "-json",
            f"-lock-timeout={self.lock_timeout}",
        ]
        args += [f"-replace=module.{MODULE}.{address}" for address in replace]
        result = self._run(workspace, unit, *args)
        # The plan phase sends an `outputs` message without values; the last one has them.
        final = [m for m in _json_lines(result.stdout) if m.get("type") == "outputs"]
        if final and "value" in final[-1].get("outputs", {}).get("module", {}):
            return _flatten(final[-1]["outputs"])
        return self.outputs(unit) or {}

    def outputs(self, unit: TerraformUnit) -> dict[str, str] | None:
        """Outputs recorded in state (None when never applied); local state costs no process."""
        workspace = self.workspace(unit.tenant_id, unit.module)
        if self.backend is None:
            state = _local_state(workspace)
            return None if state is None else _flatten(state.get("outputs", {}))
        result = self._run(self.prepare(unit), unit, "output", "-json")
        return _flatten(json.loads(result.stdout or "{}")) or None

    def destroy(self, unit: TerraformUnit) -> None:
        """Destroy everything the workspace manages, then the workspace folder itself.

        Its local state is empty by then, so nothing of the tenant is left on disk; a
        workspace never applied (or already removed) has nothing to destroy.
        """
        workspace = self.workspace(unit.tenant_id, unit.module)
        if self.backend is not None or _local_state(workspace) is not None:
            self.prepare(unit)
            self._run(
                workspace,
                unit,
                "destroy",
                "-auto-approve",
                "-input=false",
                "-json",
                f"-lock-timeout={self.lock_timeout}",
            )
        shutil.rmtree(workspace, ignore_errors=True)
        with suppress(OSError):  # the tenant's folder, once its last module is gone
            workspace.parent.rmdir()

    def _run(self, workspace: Path, unit: TerraformUnit, *args: str) -> CommandResult:
        streamed = args[0] in _STREAMED and "-json" in args
        on_line = _reporter(unit, args[0], self.on_event) if streamed else None
        result = self.runner.run(args, cwd=workspace, env=self.environment(unit), on_line=on_line)
        if result.code != 0:
            raise classify(result, workspace=workspace)
        return result

    def _module_dir(self, module: str) -> Path:
        path = self.modules_dir / module
        if not (path / "main.tf").is_file():
            msg = f"terraform module '{module}' not found in {self.modules_dir}"
            raise TerraformError(msg)
        return path

    def _target(self, unit: TerraformUnit) -> Target:
        try:
            return self.targets[unit.target]
        except KeyError:
            have = ", ".join(sorted(self.targets))
            msg = f"no terraform target '{unit.target}' configured (have: {have})"
            raise TerraformError(msg) from None

    def _cli_config(self) -> Path:
        path = self.root / "terraformrc"
        text = cli_config(self.mirror, self.root / "plugin-cache")
        if not path.exists() or path.read_text() != text:
            (self.root / "plugin-cache").mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}")
            tmp.write_text(text)
            tmp.replace(path)
        return path

    def _root_module(self, unit: TerraformUnit) -> dict[str, object]:
        target = self._target(unit)
        secret_names = sorted(self.secrets(unit.tenant_id, unit.module))
        call: dict[str, object] = {"source": str(self._module_dir(unit.module).resolve())}
        call.update({k: _escape(v) for k, v in sorted(unit.inputs.items())})
        call.update({name: f"${{var.{name}}}" for name in secret_names})
        backend = (
            {"s3": self.backend.block(unit.tenant_id, unit.module)}
            if self.backend
            else {"local": {}}
        )
        settings: dict[str, object] = {"backend": backend}
        if target.required_providers:
            settings["required_providers"] = dict(target.required_providers)
        root: dict[str, object] = {
            "terraform": settings,
            "module": {MODULE: call},
            "output": {"module": {"value": f"${{module.{MODULE}}}"}},
        }
        if secret_names:
            root["variable"] = {n: {"type": "string", "sensitive": True} for n in secret_names}
        providers = target.providers(unit.region)
        if providers:
            root["provider"] = dict(providers)
        return root

    def prepare(self, unit: TerraformUnit) -> Path:
        """Write the module call and run `terraform init` when it (or the module) changed."""
        workspace = self.workspace(unit.tenant_id, unit.module)
        workspace.mkdir(parents=True, exist_ok=True)
        if self.backend is None:
            _local_state(workspace)  # mends a state a kill cut short, before terraform reads it
        text = json.dumps(self._root_module(unit), indent=2, sort_keys=True) + "\n"
        main = workspace / "main.tf.json"
        if not main.exists() or main.read_text() != text:
            main.write_text(text)
        marker = workspace / ".terraform" / "tenantctl-init"
        wanted = hashlib.sha256((text + self.module_version(unit.module)).encode()).hexdigest()
        if marker.exists() and marker.read_text() == wanted:
            return workspace
        with self._cache_lock():
            self._run(workspace, unit, "init", "-input=false", "-no-color", "-reconfigure")
        marker.write_text(wanted)
        return workspace

    @contextmanager
    def _cache_lock(self) -> Iterator[None]:
        """The plugin cache is not safe for concurrent installs: one init at a time.

        Raises:
            ConflictError: the lock stayed held for `init_lock_timeout` seconds (not retried:
                the wait already spent the caller's lock timeout).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / ".init.lock"
        with path.open("a+") as handle:
            deadline = time.monotonic() + self.init_lock_timeout
            while not _try_lock(handle):
                if time.monotonic() >= deadline:
                    raise _cache_lock_held(path, self.init_lock_timeout)
                time.sleep(0.05)
            try:
                handle.truncate(0)
                handle.write(json.dumps(_holder_info(self.holder)) + "\n")
                handle.flush()
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _try_lock(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder_info(holder: str) -> dict[str, object]:
    pid, host = os.getpid(), socket.gethostname()
    since = datetime.now(UTC).isoformat(timespec="seconds")
    return {"pid": pid, "host": host, "holder": holder or f"pid {pid}", "since": since}


def _cache_lock_held(path: Path, waited: float) -> ConflictError:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        info = {}
    pid, host = info.get("pid", "?"), info.get("host", "?")
    who = f"{info.get('holder', 'an unknown process')} (pid {pid} on {host}, since "
    error = ConflictError(
        f"terraform init waited {waited:.0f} s for the plugin-cache lock {path}, held by "
        f"{who}{info.get('since', '?')}) — if that process is stopped or hung, end it "
        f"(on {host}: kill {pid}) and re-run; the lock is released when it exits"
    )
    # Not retried: the wait already took the whole --lock-timeout the user gave us.
    return error


def _reporter(
    unit: TerraformUnit, command: str, on_event: Callable[[TerraformEvent], None]
) -> Callable[[str], None]:
    """Turn each `-json` UI line of one run into a `TerraformEvent` for `on_event`.

    Progress is best effort: a failing callback is logged, never allowed to abort a
    half-done apply (that would leave resources created but not recorded).
    """

    def report(line: str) -> None:
        event = _event(unit, command, line)
        if event is None:
            return
        try:
            on_event(event)
        except Exception:
            log.exception("progress callback failed on %s %s", event.kind, event.resource)

    return report


def _event(unit: TerraformUnit, command: str, line: str) -> TerraformEvent | None:
    if not line.startswith("{"):
        return None
    try:
        message = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(message, dict) or "type" not in message:
        return None
    hook = message.get("hook") or {}
    resource = (hook.get("resource") or {}).get("addr", "") if isinstance(hook, dict) else ""
    return TerraformEvent(
        tenant_id=unit.tenant_id,
        module=unit.module,
        command=command,
        kind=str(message["type"]),
        message=str(message.get("@message", "")),
        resource=str(resource),
        level=str(message.get("@level", "info")),
    )


# struct flock on Linux (x86_64, arm64): l_type, l_whence, l_start, l_len, l_pid (+ padding).
_FLOCK = "hhqqixxxx"


def _local_state(workspace: Path) -> dict[str, Any] | None:
    """The workspace's local state (None when never applied), mended if a kill cut it short.

    Terraform's local backend truncates terraform.tfstate and then writes it in place, so a
    kill in between leaves a file no terraform command loads ("unexpected end of JSON
    input"). It writes terraform.tfstate.backup, the state the run started from, before the
    first truncation: that backup (or, on a first apply, no state) is put back, and what the
    cut run made is made again. The Postgres modules' SQL is idempotent, so they converge;
    cloud resources made by the cut run would be made twice, which is why AWS targets
    belong on the S3 backend (`S3Backend`), whose writes are atomic.
    """
    path = workspace / "terraform.tfstate"
    state = _load_state(path)
    if state is not None or not path.exists():
        return state
    with path.open("r+") as handle:
        if not _claim(handle):  # a running terraform: its first apply's state is still empty
            return None
        state = _load_state(path)
        if state is not None:  # written in the meantime
            return state
        backup = _load_state(path.with_suffix(".tfstate.backup"))
        if backup is None:
            log.warning("terraform state %s was cut short and has no backup: removed", path)
            path.unlink()
            return None
        log.warning("terraform state %s was cut short: restored from its backup", path)
        tmp = path.with_suffix(f".tfstate.{os.getpid()}")
        tmp.write_text(json.dumps(backup, indent=2) + "\n")
        tmp.replace(path)
        return backup


def _claim(handle: IO[str]) -> bool:
    """Lock the state file unless terraform holds it.

    Terraform holds a POSIX record lock on its state while it runs, which an open file
    description lock (F_OFD_SETLK) meets. A POSIX lock of our own would not do: this
    process drops it whenever it closes any handle of the file, as re-reading it does.
    """
    flock = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
    try:
        fcntl.fcntl(handle, fcntl.F_OFD_SETLK, flock)
    except OSError:
        return False
    return True


def _load_state(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return state if isinstance(state, dict) else None


def _flatten(outputs: Mapping[str, Any]) -> dict[str, str]:
    """`{"module": {"value": {...}}}` -> flat string outputs of the module call."""
    value = outputs.get("module", {}).get("value", {})
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}
