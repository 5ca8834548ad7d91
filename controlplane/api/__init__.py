"""The HTTP API: a thin shell over `controlplane.service`, like the CLI.

Routes parse input, call the service, render output and map errors; nothing else.
"""

from controlplane.api.app import create_app

__all__ = ["create_app"]
