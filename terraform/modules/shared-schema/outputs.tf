output "schema" {
  description = "The tenant's schema."
  value       = terraform_data.identity.output.schema
}

output "owner_role" {
  description = "NOLOGIN owner of the schema."
  value       = terraform_data.identity.output.owner_role
}

output "app_role" {
  description = "LOGIN role of the tenant's application."
  value       = terraform_data.identity.output.app_role
}
