# A tenant's dedicated database on a designated (self-hosted) Postgres server.
#
# Same mechanics as shared-schema: psql from local-exec, connection from the libpq
# environment given to terraform, password verifier through the provisioner environment
# (never in state). The tenant owns a whole database, so no RLS is needed for isolation:
# CONNECT is revoked from PUBLIC and granted to the tenant's app role only.

locals {
  inputs = {
    tenant_id         = var.tenant_id
    database          = var.database_name
    schema            = var.schema_name
    owner_role        = var.owner_role
    app_role          = var.app_role
    connection_limit  = var.connection_limit
    statement_timeout = var.statement_timeout
  }
  psql = "psql -X -q -v ON_ERROR_STOP=1"
  vars = join(" ", [for k, v in local.inputs : "-v ${k}=${v}"])
}

# Identity: the names. Replaced only when a name changes; its destroy-time provisioner
# is the only thing that drops data, so re-running the grants never does.
resource "terraform_data" "identity" {
  input = {
    tenant_id           = var.tenant_id
    database            = var.database_name
    schema              = var.schema_name
    owner_role          = var.owner_role
    app_role            = var.app_role
    sql_dir             = "${path.module}/sql"
    psql                = local.psql
    deletion_protection = var.deletion_protection
  }
  triggers_replace = [for k in ["tenant_id", "database", "owner_role", "app_role"] : local.inputs[k]]

  provisioner "local-exec" {
    when    = destroy
    command = "${self.input.psql} -v database=${self.input.database} -v owner_role=${self.input.owner_role} -v app_role=${self.input.app_role} -v deletion_protection=${self.input.deletion_protection} -f ${self.input.sql_dir}/destroy.sql"
    environment = {
      PGAPPNAME = "tenantctl-dedicated-db"
    }
  }
}

# Grants, limits and policies: replaced whenever an input or the SQL changes (and by
# the driver's `-replace` when verification found drift); the SQL is idempotent.
resource "terraform_data" "grants" {
  triggers_replace = [local.inputs, filesha256("${path.module}/sql/apply.sql")]
  depends_on       = [terraform_data.identity]

  provisioner "local-exec" {
    command = "${local.psql} ${local.vars} -f ${path.module}/sql/apply.sql"
    environment = {
      PGAPPNAME           = "tenantctl-dedicated-db"
      TENANT_APP_VERIFIER = var.app_password_verifier
    }
  }
}
