output "instance_id" {
  description = "RDS instance identifier."
  value       = aws_db_instance.db.identifier
}

output "address" {
  description = "Hostname of the instance (private)."
  value       = aws_db_instance.db.address
}

output "port" {
  description = "Port of the instance."
  value       = tostring(aws_db_instance.db.port)
}

output "database" {
  description = "Initial database in the instance."
  value       = aws_db_instance.db.db_name
}

output "kms_key_arn" {
  description = "The tenant's KMS key."
  value       = aws_kms_key.db.arn
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret holding the master password (managed by RDS)."
  value       = try(aws_db_instance.db.master_user_secret[0].secret_arn, "")
}

output "security_group_id" {
  description = "Security group of the instance."
  value       = aws_security_group.db.id
}
