variable "github_repository" {
  description = "The GitHub repository (\"owner/repo\") whose workflow runs may assume the roles. Its pull-request tokens may assume the plan role; its runs in the GitHub environment named var.environment may assume the deploy role."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$", var.github_repository)) && !contains([".", ".."], try(split("/", var.github_repository)[1], "."))
    error_message = "github_repository must be \"owner/repo\": an owner of 1-39 letters, digits and '-' (not starting with '-'), and a repository name of letters, digits, '.', '_' and '-' (not \".\" or \"..\")."
  }
}

variable "deploy_branch" {
  description = "The branch deploys run from (the GitHub environment's deployment branch policy). Recorded on the deploy role (tag DeployBranch) and in the outputs; GitHub enforces it on the environment, not IAM."
  type        = string
  default     = "main"
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9._][A-Za-z0-9._/-]{0,254}$", var.deploy_branch)) && !strcontains(var.deploy_branch, "..") && !strcontains(var.deploy_branch, "//") && !endswith(var.deploy_branch, "/") && !endswith(var.deploy_branch, ".lock")
    error_message = "deploy_branch must be a plain git branch name: letters, digits, '.', '_', '-' and '/', no '..' or '//', not ending in '/' or '.lock'."
  }
}

variable "environment" {
  description = "The environment (and GitHub environment) this account holds, e.g. \"dev\". The deploy role trusts only the subject repo:<owner>/<repo>:environment:<environment>."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}$", var.environment))
    error_message = "environment must be 1-31 lowercase letters, digits and '-', starting with a letter."
  }
}

variable "deploy_role_name" {
  description = "Name of the deploy role (deploy and destroy; what live/<env>/env.toml names as deploy_role)."
  type        = string
  default     = "fleet-deploy"
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9_+=,.@-]{1,64}$", var.deploy_role_name))
    error_message = "deploy_role_name must be an IAM role name: 1-64 letters, digits and _+=,.@-."
  }
}

variable "plan_role_name" {
  description = "Name of the plan role (read-only plans of pull requests; env.toml plan_role). Must differ from deploy_role_name."
  type        = string
  default     = "fleet-plan"
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9_+=,.@-]{1,64}$", var.plan_role_name))
    error_message = "plan_role_name must be an IAM role name: 1-64 letters, digits and _+=,.@-."
  }
}

variable "promotion_source_plan_role_arns" {
  description = "Plan roles of other accounts (environments this one promotes from: `promote_from` in env.toml) that this account's deploy role may assume, to read their release record and live function code (`deploy <env> --promote-from <source>`). The boundary denies assuming every other role. Default: none."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for arn in var.promotion_source_plan_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@-]{1,64}$", arn))])
    error_message = "promotion_source_plan_role_arns must be IAM role ARNs (arn:aws:iam::<account>:role/<name>)."
  }
}

variable "promotion_reader_role_arns" {
  description = "Deploy roles of other accounts (environments that promote from this one) that may assume this account's plan role (read-only) to read the release record and live function code. Default: none."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for arn in var.promotion_reader_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@-]{1,64}$", arn))])
    error_message = "promotion_reader_role_arns must be IAM role ARNs (arn:aws:iam::<account>:role/<name>)."
  }
}

variable "state_bucket" {
  description = "The environment's Terraform state bucket (modules/tfstate-bootstrap). The plan role may read its objects and write only *.tflock lock objects."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.state_bucket))
    error_message = "state_bucket must be a valid S3 bucket name."
  }
}

variable "lock_table" {
  description = "The environment's DynamoDB state lock table. The plan role may take and release state locks in it (items whose LockID starts with \"<state_bucket>/\")."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{3,255}$", var.lock_table))
    error_message = "lock_table must be a valid DynamoDB table name."
  }
}

variable "baseline_state_key" {
  description = "The key of this baseline's own state object in state_bucket. The deploy role's permissions boundary denies writing any object in its folder (the state, its lock, stackrun's record of the last apply)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()/-]+\\.tfstate$", var.baseline_state_key)) && !startswith(var.baseline_state_key, "/") && strcontains(var.baseline_state_key, "/")
    error_message = "baseline_state_key must be a relative S3 key ending in .tfstate, in a folder of its own (e.g. dev/000_baseline/terraform.tfstate): the boundary denies writing that folder."
  }
}

variable "deploy_policy_arns" {
  description = "Managed policies attached to the deploy role (its rights, capped by the permissions boundary). The deploy creates networks, databases, functions, their roles and an identity pool, so the default is AdministratorAccess."
  type        = list(string)
  default     = ["arn:aws:iam::aws:policy/AdministratorAccess"]
  nullable    = false

  validation {
    condition     = length(var.deploy_policy_arns) > 0 && alltrue([for arn in var.deploy_policy_arns : can(regex("^arn:aws[a-z-]*:iam::(aws|[0-9]{12}):policy/.+$", arn))])
    error_message = "deploy_policy_arns must hold at least one IAM policy ARN."
  }
}

variable "plan_read_actions" {
  description = "Read actions the plan role is allowed on every resource (what `terraform plan` needs to refresh the stacks' resources). Only read verbs are accepted (Get, List, Describe, BatchGet, Head, GET), so no write can be added here."
  type        = list(string)
  default = [
    "apigateway:GET",
    "application-autoscaling:Describe*",
    "cloudwatch:Describe*",
    "cloudwatch:Get*",
    "cloudwatch:List*",
    "cognito-idp:Describe*",
    "cognito-idp:Get*",
    "cognito-idp:List*",
    "dynamodb:Describe*",
    "dynamodb:List*",
    "ec2:Describe*",
    "ec2:Get*",
    "iam:Get*",
    "iam:List*",
    "kms:Describe*",
    "kms:Get*",
    "kms:List*",
    "lambda:Get*",
    "lambda:List*",
    "logs:Describe*",
    "logs:List*",
    "rds:Describe*",
    "rds:List*",
    "s3:Get*",
    "s3:List*",
    "secretsmanager:Describe*",
    "secretsmanager:Get*",
    "secretsmanager:List*",
    "sts:GetCallerIdentity",
    "tag:Get*",
  ]
  nullable = false

  validation {
    condition     = length(var.plan_read_actions) > 0 && alltrue([for action in var.plan_read_actions : can(regex("^[a-z0-9-]+:(Get|List|Describe|BatchGet|Head|GET$)[A-Za-z0-9*]*$", action))])
    error_message = "plan_read_actions must be read actions only: service:Get*, List*, Describe*, BatchGet*, Head* (or apigateway:GET)."
  }
}

variable "github_oidc_thumbprints" {
  description = "Thumbprints of token.actions.githubusercontent.com's certificate chain. AWS no longer uses them for GitHub (it trusts its own CA store), but the provider API of the 5.x AWS provider may require one."
  type        = list(string)
  default     = ["6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd"]
  nullable    = false

  validation {
    condition     = length(var.github_oidc_thumbprints) > 0 && alltrue([for t in var.github_oidc_thumbprints : can(regex("^[0-9a-f]{40}$", t))])
    error_message = "github_oidc_thumbprints must hold 40-digit lowercase hex SHA-1 thumbprints."
  }
}

variable "tags" {
  description = "Tags for every resource of the baseline."
  type        = map(string)
  default     = {}
  nullable    = false
}
