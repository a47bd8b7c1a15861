################################################################################
# Naming
################################################################################

variable "name" {
  description = "Name prefix for every resource of this module (for example \"fleet-dev\"). Function <key> is named \"<name>-<key>\", its role \"<name>-<key>-lambda\", its log group \"/aws/lambda/<name>-<key>\"; the HTTP API is named <name>."
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
# Functions
################################################################################

variable "functions" {
  description = <<-EOT
    The Lambda functions, keyed by a short name (lowercase letters, digits, hyphens; the
    function is named "<name>-<key>"). Per function:
      zip_path             path of the deployment zip (built by the deploy tooling)
      source_code_hash     base64-encoded SHA-256 of that zip, as filebase64sha256() gives it;
                           a new hash publishes a new version and moves the "live" alias to it
      handler              "module.function" (for example "fleet_api.handler.handler")
      runtime              default "python3.12"
      architecture         "arm64" (default) or "x86_64"
      memory_size          MB, 128-10240, default 256
      timeout              seconds, 1-900, default 10 (API Gateway itself gives up after 30 s)
      environment          environment variables, default {} (no secrets: use secret_arns)
      routes               HTTP API route keys served by this function, for example
                           ["POST /projects", "GET /projects/{project}/devices"]; default []
                           (a function without routes gets no integration and no invoke
                           permission for the API, for example a migrations function)
      database_role        with var.database: the database role the function connects as
                           (a key of database.role_secret_arns): DB_SECRET_ARN is that role's
                           secret, the only database secret it may read; default null (then
                           database.secret_arn)
      manages_database_roles
                           true for the function that gives the roles their passwords (the
                           migrations function): it gets DB_ROLE_SECRETS (JSON role => secret
                           ARN) and may put values into those secrets; default false
      secret_arns          Secrets Manager secrets the function may read (GetSecretValue and
                           DescribeSecret on exactly these ARNs); default []
      route_scopes         route key => the scopes a token must carry (at least one of
                           them) on that route; routes not listed get method_scopes of
                           their method, for example {"GET /projects" = ["fleet/admin"]}
      reserved_concurrency reserved concurrent executions; -1 (default) = unreserved,
                           0 = throttle the function completely
      log_retention_days   retention of /aws/lambda/<name>-<key>, default 30
      live_version         the published version the "live" alias points at; default null
                           = the newest published version. The deploy tooling sets it while
                           a function is pinned by a rollback: a new zip is then published
                           but takes no traffic until the pin is released.
  EOT
  type = map(object({
    zip_path               = string
    source_code_hash       = string
    handler                = string
    runtime                = optional(string, "python3.12")
    architecture           = optional(string, "arm64")
    memory_size            = optional(number, 256)
    timeout                = optional(number, 10)
    environment            = optional(map(string), {})
    routes                 = optional(list(string), [])
    secret_arns            = optional(list(string), [])
    database_role          = optional(string)
    manages_database_roles = optional(bool, false)
    route_scopes           = optional(map(list(string)), {})
    reserved_concurrency   = optional(number, -1)
    log_retention_days     = optional(number, 30)
    live_version           = optional(string)
  }))

  validation {
    condition = var.functions == null ? false : alltrue([
      for k, f in var.functions : f.live_version == null || can(regex("^[1-9][0-9]*$", f.live_version))
    ])
    error_message = "live_version must be null (follow the newest published version) or a published version number such as \"3\" (not $LATEST, not an alias)."
  }

  validation {
    condition     = try(length(var.functions) >= 1, false)
    error_message = "functions must define at least one function."
  }

  validation {
    condition = var.functions == null ? false : alltrue([
      for k, f in var.functions : can(regex("^[a-z][a-z0-9_-]*[a-z0-9]$|^[a-z]$", k))
    ])
    error_message = "Each key of functions must be lowercase letters, digits, underscores and hyphens (as Lambda function and IAM role names allow), start with a letter and end with a letter or digit."
  }

  validation {
    # The IAM role "<name>-<key>-lambda" must fit into 64 characters (the
    # function name "<name>-<key>" then fits too).
    condition = var.functions == null ? false : alltrue([
      for k, f in var.functions : length("${var.name}-${k}-lambda") <= 64
    ])
    error_message = "Each key of functions is too long: \"<name>-<key>-lambda\" (the function's IAM role name) must be at most 64 characters."
  }

  validation {
    condition = var.functions == null ? false : alltrue([
      for k, f in var.functions : try(length(f.zip_path) > 0 && endswith(lower(f.zip_path), ".zip"), false)
    ])
    error_message = "Each function's zip_path must be the path of a .zip file."
  }

  validation {
    condition = var.functions == null ? false : alltrue([
      for k, f in var.functions : can(regex("^[A-Za-z0-9+/]{43}=$", f.source_code_hash))
    ])
    error_message = "Each function's source_code_hash must be the base64-encoded SHA-256 of its zip (44 characters ending in \"=\", as filebase64sha256() gives it), not a hex digest."
  }

  validation {
    condition = var.functions == null ? false : alltrue([
      for k, f in var.functions : can(regex("^[A-Za-z0-9_/-]+(\\.[A-Za-z0-9_-]+)*\\.[A-Za-z_][A-Za-z0-9_]*$", f.handler)) && try(length(f.handler) <= 128, false)
    ])
    error_message = "Each function's handler must look like \"module.function\" or \"package.module.function\" (at most 128 characters)."
  }

  validation {
    condition = var.functions == null ? false : alltrue([
      for k, f in var.functions : can(regex("^(python3\\.\\d+|nodejs\\d+\\.x|java\\d+|dotnet\\d+|ruby\\d+\\.\\d+|provided\\.al2(023)?)$", f.runtime))
    ])
    error_message = "Each function's runtime must be a Lambda runtime identifier such as python3.12, nodejs22.x, java21 or provided.al2023."
  }

  validation {
    condition = var.functions == null ? false : alltrue([
      for k, f in var.functions : contains(["arm64", "x86_64"], coalesce(f.architecture, "invalid"))
    ])
    error_message = "Each function's architecture must be arm64 or x86_64."
  }

  validation {
    condition = var.functions == null ? false : alltrue([
      for k, f in var.functions : try(f.memory_size >= 128 && f.memory_size <= 10240 && floor(f.memory_size) == f.memory_size, false)
    ])
    error_message = "Each function's memory_size must be a whole number of MB between 128 and 10240."
  }

  validation {
    condition = var.functions == null ? false : alltrue([
      for k, f in var.functions : try(f.timeout >= 1 && f.timeout <= 900 && floor(f.timeout) == f.timeout, false)
    ])
    error_message = "Each function's timeout must be a whole number of seconds between 1 and 900."
  }

  validation {
    condition = var.functions == null ? false : alltrue([
      for k, f in var.functions : try(f.reserved_concurrency == -1 || (f.reserved_concurrency >= 0 && floor(f.reserved_concurrency) == f.reserved_concurrency), false)
    ])
    error_message = "Each function's reserved_concurrency must be -1 (unreserved) or a whole number >= 0."
  }

  validation {
    condition = var.functions == null ? false : alltrue([
      for k, f in var.functions : contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], coalesce(f.log_retention_days, -1))
    ])
    error_message = "Each function's log_retention_days must be one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653 (0, never expire, is refused)."
  }

  validation {
    # Lambda reserves these names (and rejects keys that are not identifiers).
    condition = var.functions == null ? false : alltrue(flatten([
      for k, f in var.functions : [
        for name, value in f.environment : can(regex("^[A-Za-z][A-Za-z0-9_]*$", name)) && !contains([
          "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME",
          "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
          "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID",
          "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT",
          "LAMBDA_RUNTIME_DIR",
        ], name)
      ]
    ]))
    error_message = "Environment variable names must start with a letter, contain only letters, digits and underscores, and not be one of the names Lambda reserves (AWS_REGION, AWS_LAMBDA_FUNCTION_NAME, AWS_ACCESS_KEY_ID, LAMBDA_TASK_ROOT, ...)."
  }

  validation {
    condition = var.functions == null ? false : alltrue(flatten([
      for k, f in var.functions : [
        for r in f.routes : can(regex("^(GET|POST|PUT|PATCH|DELETE|ANY) /\\S*$", r))
      ]
    ]))
    error_message = "Each route key must be \"<METHOD> /<path>\" with METHOD one of GET, POST, PUT, PATCH, DELETE, ANY, a single space and a path without spaces (for example \"GET /projects/{project}/devices\")."
  }

  validation {
    condition = var.functions == null ? false : (
      length(flatten([for k, f in var.functions : f.routes])) == length(distinct(flatten([for k, f in var.functions : f.routes])))
    )
    error_message = "A route key may appear only once across all functions (one route, one integration)."
  }

  validation {
    condition = var.functions == null ? false : alltrue(flatten([
      for k, f in var.functions : [
        for r, scopes in f.route_scopes : contains(f.routes, r) && length(scopes) >= 1 && alltrue([for s in scopes : can(regex("^[!#-\\[\\]-~]{1,256}$", s))])
      ]
    ]))
    error_message = "Each key of a function's route_scopes must be one of that function's routes, with at least one scope (1-256 printable characters without spaces, quotes or backslashes, for example \"fleet/read\")."
  }

  validation {
    condition = var.functions == null ? false : alltrue(flatten([
      for k, f in var.functions : [
        for arn in f.secret_arns : can(regex("^arn:aws[a-zA-Z-]*:secretsmanager:[a-z0-9-]+:\\d{12}:secret:[A-Za-z0-9/_+=.@!-]+$", arn))
      ]
    ]))
    error_message = "Each entry of secret_arns must be the full ARN of one Secrets Manager secret (arn:aws:secretsmanager:<region>:<account>:secret:<name>-<suffix>; RDS-managed secrets are named rds!db-...), without wildcards."
  }
}

################################################################################
# Who may call: the JWT authorizer on every route
################################################################################

variable "create_http_api" {
  description = "Whether the module creates the HTTP API (with its authorizer, stage and access logs) in front of the functions. false deploys functions only (for example a migrations function that the deploy invokes before the API's code moves); then no function may have routes and authorizer may be null."
  type        = bool
  default     = true
  nullable    = false

  validation {
    condition     = var.create_http_api || alltrue([for f in var.functions : length(f.routes) == 0])
    error_message = "With create_http_api = false there is no HTTP API: no function may have routes."
  }
}

variable "authorizer" {
  description = "The JWT authorizer every route requires: the token issuer (an https URL, the \"iss\" claim; for a Cognito user pool https://cognito-idp.<region>.amazonaws.com/<pool id>) and the accepted audience (the \"aud\" claim, or \"client_id\" of Cognito access tokens). The identity module's jwt_authorizer output. There is no way to leave a route without it; null only with create_http_api = false."
  type = object({
    issuer   = string
    audience = list(string)
  })
  default = null

  validation {
    condition     = var.authorizer == null ? !var.create_http_api : can(regex("^https://[^/?#\\s]+(/[^?#\\s]*)?$", var.authorizer.issuer))
    error_message = "authorizer is required with the HTTP API (create_http_api = true), and authorizer.issuer must be an https:// URL without query or fragment."
  }

  validation {
    condition     = var.authorizer == null ? !var.create_http_api : length(var.authorizer.audience) >= 1 && alltrue([for a in var.authorizer.audience : length(trimspace(a)) > 0])
    error_message = "authorizer.audience must list at least one non-empty audience value (client ids)."
  }
}

variable "method_scopes" {
  description = "Default scopes per HTTP method: a route not listed in its function's route_scopes requires a token with at least one of the scopes of its method. Reading methods need the read scope, changing ones the write scope."
  type        = map(list(string))
  default = {
    GET     = ["fleet/read"]
    HEAD    = ["fleet/read"]
    OPTIONS = ["fleet/read"]
    POST    = ["fleet/write"]
    PUT     = ["fleet/write"]
    PATCH   = ["fleet/write"]
    DELETE  = ["fleet/write"]
    ANY     = ["fleet/write"]
  }

  validation {
    condition = var.method_scopes == null ? false : alltrue([
      for m in ["GET", "POST", "PUT", "PATCH", "DELETE", "ANY"] : length(lookup(var.method_scopes, m, [])) >= 1
    ])
    error_message = "method_scopes must give at least one scope for each of GET, POST, PUT, PATCH, DELETE and ANY (no route may go without a scope)."
  }
}

################################################################################
# Network
################################################################################

variable "subnet_ids" {
  description = "Private subnets the functions' network interfaces are placed in (the network module's private_subnet_ids). Use at least two zones for availability; Lambda accepts at most 16."
  type        = list(string)

  validation {
    condition     = try(length(var.subnet_ids) >= 1 && length(var.subnet_ids) <= 16, false)
    error_message = "subnet_ids must list between 1 and 16 subnet IDs."
  }

  validation {
    condition     = var.subnet_ids == null ? false : alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]+$", s))])
    error_message = "Each entry of subnet_ids must be a subnet ID (subnet-...)."
  }
}

variable "security_group_ids" {
  description = "Security groups of the functions' network interfaces (the network module's lambda_security_group_id). Lambda accepts at most 5."
  type        = list(string)

  validation {
    condition     = try(length(var.security_group_ids) >= 1 && length(var.security_group_ids) <= 5, false)
    error_message = "security_group_ids must list between 1 and 5 security group IDs."
  }

  validation {
    condition     = var.security_group_ids == null ? false : alltrue([for s in var.security_group_ids : can(regex("^sg-[0-9a-f]+$", s))])
    error_message = "Each entry of security_group_ids must be a security group ID (sg-...)."
  }
}

################################################################################
# HTTP API
################################################################################

variable "stage_name" {
  description = "Name of the HTTP API stage. \"$default\" (the default) serves the routes at the root of the API's URL; any other name becomes the first path segment."
  type        = string
  default     = "$default"

  validation {
    condition     = can(regex("^(\\$default|[A-Za-z0-9_-]{1,128})$", var.stage_name))
    error_message = "stage_name must be \"$default\" or 1-128 letters, digits, hyphens and underscores."
  }
}

variable "throttling_rate_limit" {
  description = "Steady-state requests per second the stage allows across all routes. Always set explicitly on the stage: an HTTP API stage whose default route settings leave it unset throttles every request (429)."
  type        = number
  default     = 50

  validation {
    condition     = try(var.throttling_rate_limit > 0, false)
    error_message = "throttling_rate_limit must be greater than 0 (0 rejects every request with 429)."
  }
}

variable "throttling_burst_limit" {
  description = "Burst of concurrent requests the stage allows above the rate limit. Always set explicitly on the stage: unset means 0, every request 429."
  type        = number
  default     = 100

  validation {
    condition     = try(var.throttling_burst_limit > 0 && floor(var.throttling_burst_limit) == var.throttling_burst_limit, false)
    error_message = "throttling_burst_limit must be a whole number greater than 0 (0 rejects every request with 429)."
  }
}

variable "access_log_retention_days" {
  description = "Retention in days of the stage's access log group. One of the values CloudWatch Logs accepts; 0 (never expire) is refused."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], coalesce(var.access_log_retention_days, -1))
    error_message = "access_log_retention_days must be one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "cors_allow_origins" {
  description = "Origins browsers may call the API from (for example [\"https://fleet.example.com\"]). Empty (the default) configures no CORS at all: browsers on other origins are refused, server-to-server callers are unaffected. When set, the API answers preflight requests for the methods of the routes with the headers authorization and content-type."
  type        = list(string)
  default     = []

  validation {
    condition = var.cors_allow_origins == null ? false : alltrue([
      for o in var.cors_allow_origins : o == "*" || can(regex("^https?://[^/\\s]+$", o))
    ])
    error_message = "Each entry of cors_allow_origins must be \"*\" or an origin such as https://fleet.example.com (scheme and host, optional port, no path)."
  }
}

################################################################################
# Encryption
################################################################################

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key for the functions' environment variables and for every log group of the module. null (the default) uses the AWS managed aws/lambda key for environment variables and CloudWatch Logs' service encryption for logs. The key policy must allow the logs.<region>.amazonaws.com principal, and the deployer needs kms:CreateGrant on it (Lambda grants the execution roles decrypt)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-zA-Z-]*:kms:[a-z0-9-]+:\\d{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be null or a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)."
  }
}

variable "database" {
  description = <<-EOT
    PostgreSQL the functions use (typically the postgres module's outputs). Every function gets
    DB_HOST, DB_PORT and DB_NAME, and DB_SECRET_ARN of the one secret it may read:
      host, port, name   where the database is
      role_secret_arns   database role => ARN of its secret (the postgres module's
                         role_secret_arns); a function with database_role connects as that
                         role and may read that role's secret only
      secret_arn         the secret of functions without a database_role (for example the
                         master user secret, for the migrations function only); leave it out
                         so that no function of the module can read it
    null: no database.
  EOT
  type = object({
    host             = string
    port             = number
    name             = string
    secret_arn       = optional(string)
    role_secret_arns = optional(map(string), {})
  })
  default = null

  validation {
    condition     = var.database == null ? true : var.database.secret_arn == null || can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.database.secret_arn))
    error_message = "database.secret_arn must be the ARN of a Secrets Manager secret."
  }

  validation {
    condition = var.database == null ? true : var.database.role_secret_arns != null && alltrue([
      for arn in values(var.database.role_secret_arns) : can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@!-]+$", arn))
    ])
    error_message = "database.role_secret_arns must map role names to full ARNs of Secrets Manager secrets (no wildcards)."
  }

  validation {
    condition     = var.database == null ? true : (var.database.port >= 1 && var.database.port <= 65535)
    error_message = "database.port must be a TCP port (1-65535)."
  }

  validation {
    condition = var.database == null ? true : alltrue([
      for f in var.functions : f.database_role == null ? var.database.secret_arn != null : contains(keys(coalesce(var.database.role_secret_arns, {})), f.database_role)
    ])
    error_message = "Each function connects as its database_role, which must be a key of database.role_secret_arns, or (without a database_role) with database.secret_arn, which is then required."
  }
}
