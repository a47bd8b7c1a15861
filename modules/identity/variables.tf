################################################################################
# Naming
################################################################################

variable "name" {
  description = "Name of the user pool and prefix of every resource of this module (for example \"fleet-dev\"). Client secrets are stored as Secrets Manager secrets \"<name>/clients/<client>\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}[a-z0-9]$", var.name))
    error_message = "name must be 2-32 characters of lowercase letters, digits and hyphens, start with a letter and not end with a hyphen."
  }
}

variable "tags" {
  description = "Tags added to every resource of this module (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}

  validation {
    condition = var.tags == null ? false : alltrue([
      for k, v in var.tags : length(k) >= 1 && length(k) <= 128 && length(v) <= 256 && !startswith(lower(k), "aws:")
    ])
    error_message = "tags keys must be 1-128 characters and not start with \"aws:\"; values at most 256 characters."
  }
}

################################################################################
# The user pool (created only when external_issuer is null)
################################################################################

variable "domain_prefix" {
  description = "Prefix of the user pool's Cognito domain, which serves the OAuth2 token endpoint (https://<prefix>.auth.<region>.amazoncognito.com/oauth2/token). Must be unique in the region across all AWS accounts. null (the default): \"<name>-<account id>\"."
  type        = string
  default     = null

  validation {
    condition     = var.domain_prefix == null || can(regex("^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", var.domain_prefix))
    error_message = "domain_prefix must be 1-63 lowercase letters, digits and hyphens, not starting or ending with a hyphen."
  }

  validation {
    condition     = var.domain_prefix == null || !can(regex("aws|amazon|cognito", coalesce(var.domain_prefix, "-")))
    error_message = "domain_prefix must not contain \"aws\", \"amazon\" or \"cognito\" (Cognito refuses such domains)."
  }
}

variable "resource_server" {
  description = "The OAuth2 resource server of the API: its identifier (the scope prefix) and its scopes (name => description). A client's scope \"read\" of identifier \"fleet\" is requested as \"fleet/read\"."
  type = object({
    identifier = string
    name       = optional(string, "Fleet registry API")
    scopes     = map(string)
  })
  default = {
    identifier = "fleet"
    scopes = {
      read  = "Read projects and devices"
      write = "Create projects and register devices"
    }
  }

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,62}$", var.resource_server.identifier))
    error_message = "resource_server.identifier must be 1-63 lowercase letters, digits and hyphens, starting with a letter (it prefixes every scope: \"<identifier>/<scope>\")."
  }

  validation {
    condition = length(var.resource_server.scopes) >= 1 && alltrue([
      for s, d in var.resource_server.scopes : can(regex("^[a-z][a-z0-9_.-]{0,255}$", s)) && length(d) >= 1 && length(d) <= 256
    ])
    error_message = "resource_server.scopes must name at least one scope: lowercase letters, digits, '_', '.', '-' (starting with a letter), each with a description of 1-256 characters."
  }
}

variable "clients" {
  description = <<-EOT
    App clients for machine callers, keyed by client name (lowercase letters, digits, hyphens).
    Each may use the OAuth2 client credentials grant only, has a generated secret (stored in
    Secrets Manager as "<name>/clients/<client>", JSON {client_id, client_secret}) and may
    request the listed scopes, written as "<identifier>/<scope>" of resource_server. Per client:
      scopes                         scopes it may request, at least one
      access_token_validity_minutes  lifetime of its access tokens, 5-1440 minutes (default 60)
  EOT
  type = map(object({
    scopes                        = list(string)
    access_token_validity_minutes = optional(number, 60)
  }))
  default = {}

  validation {
    condition = alltrue([
      for k, c in var.clients : can(regex("^[a-z][a-z0-9-]{0,62}[a-z0-9]$", k))
    ])
    error_message = "Each key of clients must be 2-64 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen."
  }

  validation {
    condition = alltrue([
      for k, c in var.clients : length(c.scopes) >= 1 && alltrue([
        for s in c.scopes : contains([for name, _ in var.resource_server.scopes : "${var.resource_server.identifier}/${name}"], s)
      ])
    ])
    error_message = "Each client's scopes must list at least one scope, each one of resource_server's scopes written \"<identifier>/<scope>\" (by default fleet/read or fleet/write)."
  }

  validation {
    condition = alltrue([
      for k, c in var.clients : c.access_token_validity_minutes >= 5 && c.access_token_validity_minutes <= 1440 && floor(c.access_token_validity_minutes) == c.access_token_validity_minutes
    ])
    error_message = "Each client's access_token_validity_minutes must be a whole number between 5 and 1440 (Cognito's limits for access tokens)."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the user pool (Cognito's deletion protection). true (the default) for any environment whose clients must not lose their credentials by accident."
  type        = bool
  default     = true
}

variable "secret_recovery_window_in_days" {
  description = "Days Secrets Manager keeps a deleted client secret before removing it (0: at once, for environments rebuilt at will; otherwise 7-30)."
  type        = number
  default     = 30

  validation {
    condition     = var.secret_recovery_window_in_days == 0 || (var.secret_recovery_window_in_days >= 7 && var.secret_recovery_window_in_days <= 30)
    error_message = "secret_recovery_window_in_days must be 0 or between 7 and 30."
  }
}

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key for the client secrets in Secrets Manager. null (the default): the AWS managed aws/secretsmanager key."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-zA-Z-]*:kms:[a-z0-9-]+:\\d{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be null or a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)."
  }
}

################################################################################
# An external issuer instead of the pool
################################################################################

variable "external_issuer" {
  description = "An OIDC issuer the team already runs (Okta, Auth0, Entra ID, GitHub Actions' OIDC): its issuer URL and the audience values the API accepts. When set, the module creates nothing and passes it through as jwt_authorizer. stackrun sets it from env.toml's [identity] table; do not set it in stack.toml."
  type = object({
    issuer   = string
    audience = list(string)
  })
  default = null

  validation {
    condition     = var.external_issuer == null ? true : can(regex("^https://[^/?#\\s]+(/[^?#\\s]*)?$", var.external_issuer.issuer))
    error_message = "external_issuer.issuer must be an https:// URL without query or fragment (the issuer's \"iss\" value)."
  }

  validation {
    condition     = var.external_issuer == null ? true : length(var.external_issuer.audience) >= 1 && alltrue([for a in var.external_issuer.audience : length(trimspace(a)) > 0])
    error_message = "external_issuer.audience must list at least one non-empty audience value."
  }
}
