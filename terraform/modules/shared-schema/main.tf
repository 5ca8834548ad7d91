# A tenant's schema in the shared Postgres, with RLS forced on its tables.
#
# Only built-in resources are available, so the SQL runs through psql from local-exec.
# The connection comes from the libpq environment (PGHOST, PGUSER, PGPASSWORD, ...)
# that the caller gives to terraform; the password verifier comes from a sensitive
# variable through the provisioner environment. Neither is stored in state.
# Every statement in sql/ is idempotent, so replacing this resource re-converges.

locals {
  inputs = {
    tenant_id         = var.tenant_id
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
    tenant_id  = var.tenant_id
    schema     = var.schema_name
    owner_role = var.owner_role
    app_role   = var.app_role
    sql_dir    = "${path.module}/sql"
    psql       = local.psql
  }
  triggers_replace = [for k in ["tenant_id", "schema", "owner_role", "app_role"] : local.inputs[k]]

  provisioner "local-exec" {
    when    = destroy
    command = "${self.input.psql} -v schema=${self.input.schema} -v owner_role=${self.input.owner_role} -v app_role=${self.input.app_role} -f ${self.input.sql_dir}/destroy.sql"
    environment = {
      PGAPPNAME = "tenantctl-shared-schema"
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
      PGAPPNAME           = "tenantctl-shared-schema"
      TENANT_APP_VERIFIER = var.app_password_verifier
    }
  }
}
