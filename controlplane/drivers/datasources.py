"""Where a tenant's initial data comes from: a local folder or an S3 prefix.

`data_import.source` is `s3://bucket/prefix/` (read through `aws.S3Objects`) or a folder:
`file:///abs/path`, an absolute path, or `./rel` / `../rel` relative to the folder of the
tenant file. Only `.csv`, `.jsonl` and `.ndjson` files directly inside are read, by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from controlplane.drivers import aws
from controlplane.errors import NotFoundError
from controlplane.models.imports import SourceFile

__all__ = ["SUFFIXES", "DataSources"]

SUFFIXES = (".csv", ".jsonl", ".ndjson")


@dataclass(frozen=True)
class DataSources:
    """Reads the files of a `data_import.source`."""

    s3: aws.S3Objects = field(default_factory=aws.S3Objects)

    def read(self, source: str, base_dir: str) -> list[SourceFile]:
        """Every data file of `source`, by name; NotFoundError for a missing folder."""
        if source.startswith("s3://"):
            return self.s3.read_prefix(source, SUFFIXES)
        folder = Path(source.removeprefix("file://"))
        if not folder.is_absolute():
            folder = Path(base_dir) / folder
        if not folder.is_dir():
            msg = f"data_import.source {source}: folder {folder} not found — check the path"
            raise NotFoundError(msg)
        return [
            SourceFile(path.name, path.read_bytes())
            for path in sorted(folder.iterdir())
            if path.is_file() and path.name.lower().endswith(SUFFIXES)
        ]
