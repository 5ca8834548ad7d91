# Who may use the tenant's key, and the roles AWS services assume to write its logs.

# The account administers the key (without this statement nobody could, not even to
# fix the policy); everyone else uses it only through the services that hold the
# tenant's data: RDS (storage, Performance Insights), Secrets Manager (the master
# password) and, for premium, CloudWatch Logs for the VPC's flow log group only.
data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_109:a key policy's "*" resource is the key itself; use is limited by ViaService and account
  #checkov:skip=CKV_AWS_111:a key policy's "*" resource is the key itself; use is limited by ViaService and account
  #checkov:skip=CKV_AWS_356:a key policy's "*" resource is the key itself, not every resource
  statement {
    sid = "AccountAdministersTheKey"
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
    actions = [
      "kms:CancelKeyDeletion", "kms:Create*", "kms:Delete*", "kms:Describe*", "kms:Disable*",
      "kms:Enable*", "kms:Get*", "kms:List*", "kms:Put*", "kms:Revoke*",
      "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:UntagResource", "kms:Update*",
    ]
    resources = ["*"] # in a key policy, "*" is this key
  }

  statement {
    sid = "UseThroughTheTenantsServices"
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
    actions = [
      "kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt",
      "kms:GenerateDataKey*", "kms:ListGrants", "kms:ReEncrypt*",
    ]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["rds.${local.region}.amazonaws.com", "secretsmanager.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:CallerAccount"
      values   = [local.account]
    }
  }

  dynamic "statement" {
    for_each = local.premium ? [local.flow_log_group] : []
    content {
      sid = "CloudWatchLogsEncryptsTheFlowLogs"
      principals {
        type        = "Service"
        identifiers = ["logs.${local.region}.amazonaws.com"]
      }
      actions   = ["kms:Decrypt*", "kms:Describe*", "kms:Encrypt*", "kms:GenerateDataKey*", "kms:ReEncrypt*"]
      resources = ["*"]
      condition {
        test     = "ArnEquals"
        variable = "kms:EncryptionContext:aws:logs:arn"
        values   = ["arn:${local.partition}:logs:${local.region}:${local.account}:log-group:${statement.value}"]
      }
    }
  }
}

# The services that assume this module's roles, each only on behalf of this account:
# RDS enhanced monitoring (OS metrics into log group RDSOSMetrics) and VPC Flow Logs.
locals {
  trusted = { monitoring = "monitoring.rds.amazonaws.com", flow_logs = "vpc-flow-logs.amazonaws.com" }
}

data "aws_iam_policy_document" "trust" {
  for_each = local.trusted
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = [each.value]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  name               = "${local.name}-rds-monitor"
  assume_role_policy = data.aws_iam_policy_document.trust["monitoring"].json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

# Premium flow logs: the VPC Flow Logs service writes into the tenant's log group only.
resource "aws_iam_role" "flow_logs" {
  count              = local.premium ? 1 : 0
  name               = "${local.name}-flow-logs"
  assume_role_policy = data.aws_iam_policy_document.trust["flow_logs"].json
  tags               = local.tags
}

data "aws_iam_policy_document" "flow_logs_write" {
  count = local.premium ? 1 : 0
  statement {
    actions = [
      "logs:CreateLogStream", "logs:DescribeLogGroups", "logs:DescribeLogStreams", "logs:PutLogEvents",
    ]
    resources = [aws_cloudwatch_log_group.flow[0].arn, "${aws_cloudwatch_log_group.flow[0].arn}:*"]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  count  = local.premium ? 1 : 0
  name   = "write-flow-logs"
  role   = aws_iam_role.flow_logs[0].id
  policy = data.aws_iam_policy_document.flow_logs_write[0].json
}
