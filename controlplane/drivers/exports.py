"""Where tenant exports are kept, encrypted under a key of the tenant's own.

Two stores with the same four methods (`steps.exporting.ExportStore`):

- `S3Exports`: objects under `s3://bucket/prefix/<tenant>/<export>/`, written with SSE-KMS
  under the tenant's KMS key (alias `alias/tenantctl/<tenant>`, created on first use and
  tagged with the tenant, so a key whose alias was never written is found again).
  Shredding schedules the key's deletion: every object under it becomes unreadable.
- `LocalExports` (the embedded default): files under `<data dir>/exports/<tenant>/<export>/`,
  each AES-256-GCM encrypted with the tenant's data key; the data key is stored only
  wrapped (AES-GCM) by a key derived from the platform master key, the one the derived
  database passwords come from. Shredding deletes the wrapped data key.

The authenticated data of every file names tenant, export and file, so a file copied
to another export or tenant does not decrypt.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions  # type: ignore[import-untyped]
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from controlplane.drivers import aws
from controlplane.errors import DriverError, StepFailedError

__all__ = ["LocalExports", "S3Exports", "key_alias"]

_NONCE = 12
_TAG_KEY = "tenantctl:tenant"
_PENDING_WINDOW_DAYS = 7  # KMS's shortest: the key is gone a week after the purge
_WRAPPED_KEY = "data-key.wrapped"


def key_alias(tenant_id: str) -> str:
    """The KMS alias of the tenant's export key."""
    return f"alias/tenantctl/{tenant_id}"


def _seal(key: bytes, plain: bytes, aad: str) -> bytes:
    nonce = secrets.token_bytes(_NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plain, aad.encode())


def _open(key: bytes, sealed: bytes, aad: str) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], aad.encode())
    except InvalidTag as exc:
        msg = f"{aad}: does not decrypt (changed, moved, or its tenant key was shredded)"
        raise StepFailedError(msg) from exc


@dataclass(frozen=True)
class LocalExports:
    """Encrypted files in a local folder; the data keys wrapped by the master key."""

    root: Path
    master_key: bytes

    def location(self, tenant_id: str, export_id: str) -> str:
        """Where `write` puts an export."""
        return (self.root / tenant_id / export_id).resolve().as_uri() + "/"

    def write(self, tenant_id: str, export_id: str, files: Mapping[str, bytes]) -> str:
        """Encrypt and write each file (atomically: a crash leaves no half file)."""
        key = self._data_key(tenant_id, create=True)
        folder = self.root / tenant_id / export_id
        with _local("write", folder):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            for name, data in files.items():
                partial = folder / f".{name}.partial"
                partial.write_bytes(_seal(key, data, f"{tenant_id}/{export_id}/{name}"))
                partial.replace(folder / name)
        return self.location(tenant_id, export_id)

    def read(self, tenant_id: str, export_id: str, name: str) -> bytes | None:
        """One file decrypted; None when it is not there."""
        path = self.root / tenant_id / export_id / name
        with _local("read", path):
            if not path.is_file():
                return None
            sealed = path.read_bytes()
        return _open(self._data_key(tenant_id), sealed, f"{tenant_id}/{export_id}/{name}")

    def shred(self, tenant_id: str) -> str:
        """Delete the tenant's wrapped data key: its exports can never be read again."""
        path = self.root / tenant_id / _WRAPPED_KEY
        with _local("shred", path):
            path.unlink(missing_ok=True)
        return f"data key {path}"

    def shred_problems(self, tenant_id: str) -> list[str]:
        """What is left of the tenant's key (empty once shredded)."""
        path = self.root / tenant_id / _WRAPPED_KEY
        return [f"data key {path} still exists"] if path.exists() else []

    def _kek(self) -> bytes:
        return hmac.new(self.master_key, b"tenantctl export key wrapping", hashlib.sha256).digest()

    def _data_key(self, tenant_id: str, *, create: bool = False) -> bytes:
        path = self.root / tenant_id / _WRAPPED_KEY
        with _local("read the data key of", path):
            if create and not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                wrapped = _seal(self._kek(), secrets.token_bytes(32), f"{tenant_id}/data-key")
                try:  # O_EXCL: two writers never replace each other's key
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:
                    pass
                else:
                    with os.fdopen(fd, "wb") as handle:
                        handle.write(wrapped)
            if not path.exists():
                msg = f"tenant '{tenant_id}': no data key at {path} (shredded by a purge?)"
                raise StepFailedError(msg)
            return _open(self._kek(), path.read_bytes(), f"{tenant_id}/data-key")

    def __repr__(self) -> str:
        return f"LocalExports(root={self.root}, master_key=<hidden>)"


class _LocalError(DriverError):
    """A local export file could not be read or written."""


@contextlib.contextmanager
def _local(what: str, path: Path) -> Iterator[None]:
    """OSError -> a driver error naming the path (a full disk, a permission)."""
    try:
        yield
    except OSError as exc:
        msg = f"export {what} {path}: {exc.strerror or exc}"
        raise _LocalError(msg) from exc


@dataclass(frozen=True)
class S3Exports:
    """Objects under an S3 prefix with SSE-KMS under each tenant's own KMS key."""

    url: str  # s3://bucket/prefix/
    region: str | None = None

    def location(self, tenant_id: str, export_id: str) -> str:
        """Where `write` puts an export."""
        return f"{self.url.rstrip('/')}/{tenant_id}/{export_id}/"

    def write(self, tenant_id: str, export_id: str, files: Mapping[str, bytes]) -> str:
        """Put each file with SSE-KMS under the tenant's key (created on first use)."""
        key = self._key(tenant_id, create=True)
        bucket, prefix = aws.split_url(self.location(tenant_id, export_id))
        s3 = self._client("s3")
        for name, data in files.items():
            with aws.translated(f"S3 put s3://{bucket}/{prefix}{name}"):
                s3.put_object(
                    Bucket=bucket,
                    Key=prefix + name,
                    Body=data,
                    ServerSideEncryption="aws:kms",
                    SSEKMSKeyId=key,
                )
        return self.location(tenant_id, export_id)

    def read(self, tenant_id: str, export_id: str, name: str) -> bytes | None:
        """One object (decrypted by S3 with the tenant's key); None when it is not there."""
        bucket, prefix = aws.split_url(self.location(tenant_id, export_id))
        s3 = self._client("s3")
        try:
            answer = s3.get_object(Bucket=bucket, Key=prefix + name)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            with aws.translated(f"S3 read s3://{bucket}/{prefix}{name}"):
                raise
        if answer.get("ServerSideEncryption") != "aws:kms":
            msg = f"s3://{bucket}/{prefix}{name} is not encrypted with SSE-KMS"
            raise StepFailedError(msg)
        with aws.translated(f"S3 read s3://{bucket}/{prefix}{name}"):
            return bytes(answer["Body"].read())

    def shred(self, tenant_id: str) -> str:
        """Schedule deletion of the tenant's keys, then drop the alias (re-run safe)."""
        kms = self._client("kms")
        keys = self._tenant_keys(tenant_id)
        for key_id, state in keys:
            if state != "PendingDeletion":
                with aws.translated(f"KMS schedule deletion of {key_id}"):
                    kms.schedule_key_deletion(
                        KeyId=key_id, PendingWindowInDays=_PENDING_WINDOW_DAYS
                    )
        try:
            kms.delete_alias(AliasName=key_alias(tenant_id))
        except kms.exceptions.NotFoundException:
            pass  # deleted by an earlier run
        except botocore.exceptions.ClientError:
            with aws.translated(f"KMS delete {key_alias(tenant_id)}"):
                raise
        return f"KMS key(s) {', '.join(k for k, _ in keys) or 'none'} pending deletion"

    def shred_problems(self, tenant_id: str) -> list[str]:
        """Keys of the tenant not yet pending deletion (empty once shredded)."""
        return [
            f"KMS key {key_id} is {state}"
            for key_id, state in self._tenant_keys(tenant_id)
            if state != "PendingDeletion"
        ]

    def _client(self, service: str) -> Any:
        return aws.boto_client(service, self.region)

    def _key(self, tenant_id: str, *, create: bool) -> str:
        """The tenant's key id: by alias, else by tag, else (create) a new one."""
        alias = key_alias(tenant_id)
        kms = self._client("kms")
        try:
            return str(kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"])
        except kms.exceptions.NotFoundException:
            pass
        except botocore.exceptions.ClientError:
            with aws.translated(f"KMS describe {alias}"):
                raise
        live = [k for k, state in self._tenant_keys(tenant_id) if state == "Enabled"]
        if not live and not create:
            msg = f"tenant '{tenant_id}': no KMS key {alias}"
            raise StepFailedError(msg)
        with aws.translated(f"KMS create {alias}"):
            key_id = live[0] if live else self._create_key(kms, tenant_id)
            kms.create_alias(AliasName=alias, TargetKeyId=key_id)
        return key_id

    @staticmethod
    def _create_key(kms: Any, tenant_id: str) -> str:
        answer = kms.create_key(
            Description=f"tenantctl exports of tenant {tenant_id}",
            Tags=[{"TagKey": _TAG_KEY, "TagValue": tenant_id}],
        )
        return str(answer["KeyMetadata"]["KeyId"])

    def _tenant_keys(self, tenant_id: str) -> list[tuple[str, str]]:
        """(key id, state) of every key tagged with the tenant (one lookup per key)."""
        kms = self._client("kms")
        found = []
        with aws.translated("KMS list keys"):
            for key_id in _key_ids(kms):
                tags = kms.list_resource_tags(KeyId=key_id).get("Tags", [])
                if {"TagKey": _TAG_KEY, "TagValue": tenant_id} in tags:
                    state = kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]
                    found.append((key_id, str(state)))
        return found


def _key_ids(kms: Any) -> Iterator[str]:
    for page in kms.get_paginator("list_keys").paginate():
        for key in page.get("Keys", ()):
            yield str(key["KeyId"])
