"""Read a stack's state object straight from the backend bucket (no terraform init needed).

One GET gives a stack's outputs (for the stacks after it), its serial (part of its fingerprint)
and its resources (a destroy that deletion protection would stop half-way is refused before it
starts). Read-only: state is only ever written by terraform.
"""

from __future__ import annotations

import json
from typing import Any

from stackrun.config import Stack
from stackrun.config.module_interface import ModuleInfo
from stackrun.terraform.workspace import Workspace

# Resource types whose `deletion_protection` makes AWS refuse the delete.
PROTECTABLE_TYPES = {
    "aws_db_instance": "identifier",
    "aws_rds_cluster": "cluster_identifier",
    "aws_dynamodb_table": "name",
    "aws_lb": "name",
    "aws_cognito_user_pool": "name",
}


def read_state(workspace: Workspace, stack: Stack, s3: Any | None = None) -> dict[str, Any] | None:
    """The stack's state document, or None when the stack was never applied."""
    environment = workspace.environment
    client = s3 or workspace.target.client(environment, "s3")
    key = environment.state_key(stack.name)
    try:
        reply = client.get_object(Bucket=environment.backend.bucket, Key=key)
    except (client.exceptions.NoSuchKey, client.exceptions.NoSuchBucket):
        return None
    state: dict[str, Any] = json.loads(reply["Body"].read())
    return state


def deletion_protected(state: dict[str, Any] | None) -> list[str]:
    """Resources of a state document whose deletion protection is on, as readable names."""
    found = []
    for resource in (state or {}).get("resources", []):
        name_key = PROTECTABLE_TYPES.get(resource.get("type", ""))
        if resource.get("mode") != "managed" or name_key is None:
            continue
        address = ".".join(
            part for part in (resource.get("module"), resource["type"], resource["name"]) if part
        )
        for instance in resource.get("instances", []):
            attributes = instance.get("attributes") or {}
            # a bool, or Cognito's "ACTIVE"/"INACTIVE"
            if attributes.get("deletion_protection") in (True, "ACTIVE"):
                found.append(f"{address} ({attributes.get(name_key, '?')})")
    return found


def serial_of(state: dict[str, Any] | None) -> str:
    """`lineage:serial` of a state document: changes whenever terraform writes new state."""
    if not state:
        return "none"
    return f"{state.get('lineage', '')}:{state.get('serial', '')}"


def outputs_of(state: dict[str, Any] | None, module: ModuleInfo) -> dict[str, dict[str, Any]]:
    """The root outputs of a state document: name -> {value, type, sensitive}.

    What `terraform output -json` prints, without init or a terraform process. Root outputs
    are all marked sensitive when rendered (render.py); the module's own flags decide here.
    """
    outputs = (state or {}).get("outputs") or {}
    return {
        name: {
            "value": item.get("value"),
            "type": item.get("type"),
            "sensitive": name in module.sensitive_outputs,
        }
        for name, item in outputs.items()
    }
