variable "tenant_id" {
  description = "Tenant id (DNS label); the RLS policy of every tenant table is keyed to it."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$", var.tenant_id))
    error_message = "tenant_id must be a lowercase DNS label of at most 40 characters."
  }
}

variable "schema_name" {
  description = "Schema holding the tenant's tables (tenant_<id>, '-' -> '_')."
  type        = string
  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.schema_name))
    error_message = "schema_name must be a lowercase SQL identifier."
  }
}

variable "owner_role" {
  description = "NOLOGIN role that owns the schema."
  type        = string
  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.owner_role))
    error_message = "owner_role must be a lowercase SQL identifier."
  }
}

variable "app_role" {
  description = "LOGIN role the tenant's application connects as."
  type        = string
  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.app_role))
    error_message = "app_role must be a lowercase SQL identifier."
  }
}

variable "connection_limit" {
  description = "CONNECTION LIMIT of the app role (from the tier profile)."
  type        = number
}

variable "statement_timeout" {
  description = "statement_timeout of the app role, e.g. 30s (from the tier profile)."
  type        = string
  validation {
    condition     = can(regex("^[0-9]+(ms|s|min)$", var.statement_timeout))
    error_message = "statement_timeout must look like 500ms, 30s or 2min."
  }
}

variable "app_password_verifier" {
  description = <<-EOT
    SCRAM-SHA-256 verifier of the app role's password (never the password itself).
    Pass it as TF_VAR_app_password_verifier; it reaches psql only through the
    provisioner environment, which Terraform does not store in state.
  EOT
  type        = string
  sensitive   = true
  nullable    = false
}
