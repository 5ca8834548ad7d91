"""tenantctl's control plane: everything except argument parsing lives here."""

__all__: list[str] = []
