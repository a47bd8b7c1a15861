# The provider versions every module is tested with and every stack deploys with: the one
# dependency lock file next to this file (.terraform.lock.hcl) selects them for all of them.
# Not a module: `nox -s lock` runs `terraform providers lock` here to update that lock file.
terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}
