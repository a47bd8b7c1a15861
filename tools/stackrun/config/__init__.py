"""Load and validate `live/` into one immutable Environment.

Layout read here:

    live/project.toml                  project-wide settings (project.py)
    live/<env>/env.toml                account, region, deploy role, tags of one environment
                                       (environment.py)
    live/<env>/NNN_<name>/stack.toml   the module a stack deploys, its inputs and dependencies
                                       (stacks.py, stack_sections.py; module_interface.py reads
                                       the module)
    live/_defaults/NNN_<name>.toml     what that stack shares in every environment (defaults.py)

model.py holds what they load into, keys.py what each file may hold, checks.py how a file is
checked, overrides.py `--set`. Every problem in every file is collected and reported together
(file, key, what was expected) before anything runs. Nothing here talks to AWS or runs
terraform.
"""

from stackrun.config.environment import load_environment
from stackrun.config.keys import ROLE_ARN_PATTERN, duration_seconds
from stackrun.config.layout import list_environments
from stackrun.config.model import BackendSettings, Canary, Environment, Project, Stack
from stackrun.config.overrides import apply_overrides
from stackrun.config.project import load_project

__all__ = [
    "ROLE_ARN_PATTERN",
    "BackendSettings",
    "Canary",
    "Environment",
    "Project",
    "Stack",
    "apply_overrides",
    "duration_seconds",
    "list_environments",
    "load_environment",
    "load_project",
]
