"""YAML loading with line numbers: tenant files, directories and platform.yaml."""

__all__: list[str] = []
