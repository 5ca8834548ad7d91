output "database" {
  description = "The tenant's dedicated database."
  value       = terraform_data.identity.output.database
}

output "schema" {
  description = "Schema the app role's search_path is pinned to."
  value       = terraform_data.identity.output.schema
}

output "owner_role" {
  description = "NOLOGIN owner of the database."
  value       = terraform_data.identity.output.owner_role
}

output "app_role" {
  description = "LOGIN role of the tenant's application."
  value       = terraform_data.identity.output.app_role
}
