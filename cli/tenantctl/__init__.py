"""`tenantctl`: the command-line shell over `controlplane.service`."""

__all__: list[str] = []
