"""stackrun: a Terragrunt-style stack runner for the fleet-registry infrastructure."""

__version__ = "0.1.0"
