# A tenant's dedicated PostgreSQL instance on RDS, encrypted with its own KMS key.
#
# enterprise: the instance lives in the platform VPC (vpc_id/subnet_ids).
# premium: a dedicated VPC with private subnets, Multi-AZ, and a key in a CloudHSM-backed
# custom key store (AWS does not rotate such keys automatically: rotation is on for
# every other key, and HSM key rotation is an operator procedure, see docs/database.md).
# The master password is generated and kept by RDS in Secrets Manager, so it never
# passes through Terraform; applications authenticate with IAM database auth.
# Logs: the instance exports its Postgres and upgrade logs to CloudWatch, logs DDL and
# slow statements (never every statement: rows would end up in logs), and sends OS
# metrics (enhanced monitoring) and Performance Insights, encrypted with the tenant key.
# A premium VPC records flow logs and its default security group denies everything.

locals {
  premium = var.tier == "premium"
  name    = "tenantctl-${var.tenant_id}"
  tags = {
    "tenantctl.io/tenant" = var.tenant_id
    "tenantctl.io/tier"   = var.tier
  }
  vpc_id     = local.premium ? aws_vpc.tenant[0].id : var.vpc_id
  subnet_ids = local.premium ? aws_subnet.private[*].id : var.subnet_ids
  account    = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  # Where the premium VPC's flow logs go (a log group encrypted with the tenant key).
  flow_log_group = "/tenantctl/${var.tenant_id}/vpc-flow-logs"
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

resource "aws_kms_key" "db" {
  description             = "${local.name} database encryption"
  enable_key_rotation     = var.custom_key_store_id == ""
  custom_key_store_id     = var.custom_key_store_id == "" ? null : var.custom_key_store_id
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
  tags                    = local.tags
}

resource "aws_kms_alias" "db" {
  name          = "alias/${local.name}-db"
  target_key_id = aws_kms_key.db.key_id
}

resource "aws_vpc" "tenant" {
  count                = local.premium ? 1 : 0
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = merge(local.tags, { Name = local.name })
}

# Terraform adopts the VPC's default group and removes all its rules: nothing that lands
# in it by mistake can talk to anything.
resource "aws_default_security_group" "tenant" {
  count  = local.premium ? 1 : 0
  vpc_id = aws_vpc.tenant[0].id
  tags   = merge(local.tags, { Name = "${local.name}-default-deny" })
}

resource "aws_flow_log" "tenant" {
  count                    = local.premium ? 1 : 0
  vpc_id                   = aws_vpc.tenant[0].id
  traffic_type             = "ALL"
  log_destination_type     = "cloud-watch-logs"
  log_destination          = aws_cloudwatch_log_group.flow[0].arn
  iam_role_arn             = aws_iam_role.flow_logs[0].arn
  max_aggregation_interval = 60
  tags                     = local.tags
}

resource "aws_cloudwatch_log_group" "flow" {
  count             = local.premium ? 1 : 0
  name              = local.flow_log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.db.arn
  tags              = local.tags
}

resource "aws_subnet" "private" {
  count                   = local.premium ? length(var.availability_zones) : 0
  vpc_id                  = aws_vpc.tenant[0].id
  cidr_block              = cidrsubnet(var.vpc_cidr, 8, count.index)
  availability_zone       = var.availability_zones[count.index]
  map_public_ip_on_launch = false
  tags                    = merge(local.tags, { Name = "${local.name}-private-${count.index}" })
}

resource "aws_db_subnet_group" "db" {
  name       = local.name
  subnet_ids = local.subnet_ids
  tags       = local.tags

  lifecycle {
    precondition {
      condition     = length(local.subnet_ids) >= 2
      error_message = "the database needs private subnets in at least two availability zones."
    }
  }
}

# No egress rules: Terraform removes the default allow-all egress of a new group.
resource "aws_security_group" "db" {
  name        = "${local.name}-db"
  description = "PostgreSQL of tenant ${var.tenant_id}: cluster CIDR only"
  vpc_id      = local.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "postgres" {
  security_group_id = aws_security_group.db.id
  description       = "PostgreSQL from the platform cluster"
  cidr_ipv4         = var.cluster_cidr
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
}

resource "aws_db_instance" "db" {
  identifier                            = local.name
  engine                                = "postgres"
  engine_version                        = var.engine_version
  instance_class                        = var.instance_class
  allocated_storage                     = var.allocated_storage
  storage_type                          = "gp3"
  db_name                               = var.database_name
  username                              = "tenantctl_admin"
  manage_master_user_password           = true
  master_user_secret_kms_key_id         = aws_kms_key.db.key_id
  storage_encrypted                     = true
  kms_key_id                            = aws_kms_key.db.arn
  iam_database_authentication_enabled   = true
  db_subnet_group_name                  = aws_db_subnet_group.db.name
  vpc_security_group_ids                = [aws_security_group.db.id]
  publicly_accessible                   = false
  multi_az                              = local.premium
  parameter_group_name                  = aws_db_parameter_group.db.name
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.monitoring.arn
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.db.arn
  performance_insights_retention_period = 7
  backup_retention_period               = var.backup_retention_days
  deletion_protection                   = var.deletion_protection
  skip_final_snapshot                   = var.skip_final_snapshot
  final_snapshot_identifier             = var.skip_final_snapshot ? null : "${local.name}-final"
  copy_tags_to_snapshot                 = true
  auto_minor_version_upgrade            = true
  tags                                  = local.tags
  depends_on                            = [aws_iam_role_policy_attachment.monitoring]
}

# TLS only, and what Postgres writes to the exported log: DDL, slow statements and
# sessions. Not every statement (`all` would copy tenants' data into CloudWatch).
resource "aws_db_parameter_group" "db" {
  name        = local.name
  family      = "postgres${split(".", var.engine_version)[0]}"
  description = "Tenant ${var.tenant_id}: TLS only; logs DDL, slow statements, sessions"
  tags        = local.tags

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = tostring(var.log_min_duration_ms)
  }
  parameter {
    name  = "log_connections"
    value = "1"
  }
  parameter {
    name  = "log_disconnections"
    value = "1"
  }
}
