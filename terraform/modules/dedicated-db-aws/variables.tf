variable "tenant_id" {
  description = "Tenant id (DNS label); names every resource and tags it."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$", var.tenant_id))
    error_message = "tenant_id must be a lowercase DNS label of at most 40 characters."
  }
}

variable "tier" {
  description = "enterprise: platform VPC and subnets; premium: dedicated VPC, Multi-AZ, HSM-backed key."
  type        = string
  validation {
    condition     = contains(["enterprise", "premium"], var.tier)
    error_message = "tier must be enterprise or premium."
  }
}

variable "database_name" {
  description = "Initial database created in the instance."
  type        = string
}

variable "cluster_cidr" {
  description = "CIDR of the Kubernetes cluster: the only source allowed to reach port 5432."
  type        = string
  validation {
    condition     = can(cidrhost(var.cluster_cidr, 0))
    error_message = "cluster_cidr must be a CIDR block."
  }
}

variable "vpc_id" {
  description = "Platform VPC of enterprise tenants (ignored for premium, which gets its own)."
  type        = string
  default     = ""
}

variable "subnet_ids" {
  description = "Private subnets of the platform VPC for enterprise tenants (ignored for premium)."
  type        = list(string)
  default     = []
}

variable "vpc_cidr" {
  description = "CIDR of the dedicated VPC of a premium tenant."
  type        = string
  default     = "10.64.0.0/16"
}

variable "availability_zones" {
  description = "Zones of the premium VPC's private subnets (one subnet each, at least two)."
  type        = list(string)
  default     = []
}

variable "custom_key_store_id" {
  description = "Premium: CloudHSM-backed custom key store that holds the tenant's KMS key."
  type        = string
  default     = ""
}

variable "instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t3.medium"
}

variable "engine_version" {
  description = "PostgreSQL engine version."
  type        = string
  default     = "16.3"
}

variable "allocated_storage" {
  description = "Storage in GiB."
  type        = number
  default     = 20
}

variable "backup_retention_days" {
  description = "Automated backup retention; at least 7 days."
  type        = number
  default     = 7
  validation {
    condition     = var.backup_retention_days >= 7 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 7 and 35."
  }
}

variable "deletion_protection" {
  description = "RDS deletion protection; set false (and apply) before a purge."
  type        = bool
  default     = true
}

variable "skip_final_snapshot" {
  description = "Skip the final snapshot on destroy (tests only)."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Retention of the premium VPC's flow log group; at least a year."
  type        = number
  default     = 365
  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch retention of at least 365 days (365, 400, 545, 731, ...)."
  }
}

variable "log_min_duration_ms" {
  description = "Statements slower than this many milliseconds are logged (log_min_duration_statement)."
  type        = number
  default     = 1000
  validation {
    condition     = var.log_min_duration_ms >= 0
    error_message = "log_min_duration_ms must be zero or more."
  }
}
