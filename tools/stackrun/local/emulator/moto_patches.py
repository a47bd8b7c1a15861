"""The patches of moto's classes (a-e, g, l, n, p of ``server.py``'s list, which says why each
exists); ``install_patches`` and ``install_invoke`` apply them."""

from __future__ import annotations

import atexit
import copy
import json
import secrets
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from . import cloudwatch, cognito
from .middleware import LAMBDA_CODE_PATH, current_host, current_scheme

_SECURE_TRANSPORT_KEY = "aws:securetransport"
_BOOL_OPERATORS = {"bool", "boolifexists"}


def bucket_get_permission(bucket: Any, action: str, resource: str) -> Any:
    """Replacement for ``moto.s3.models.FakeBucket.get_permission`` (see server.py's docstring)."""
    from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, PermissionResult

    if bucket.policy is None:
        return PermissionResult.NEUTRAL
    document = bucket.policy.decode() if isinstance(bucket.policy, bytes) else bucket.policy
    scheme = current_scheme()
    if scheme is None:
        return IAMPolicy(document).is_action_permitted(action, resource)  # moto's own check

    policy = json.loads(document)
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    secure = scheme == "https"
    permitted = False
    for statement in statements:
        applicable = _apply_secure_transport(statement, secure)
        if applicable is None:
            continue
        result = IAMPolicyStatement(applicable).is_action_permitted(action, resource)
        if result == PermissionResult.DENIED:
            return result
        if result == PermissionResult.PERMITTED:
            permitted = True
    return PermissionResult.PERMITTED if permitted else PermissionResult.NEUTRAL


def _apply_secure_transport(statement: dict[str, Any], secure: bool) -> dict[str, Any] | None:
    """Return the statement as it applies to this request, or None if it does not apply.

    Conditions on ``aws:SecureTransport`` are decided here and removed; the statement is
    returned unchanged when it has none.
    """
    conditions = statement.get("Condition")
    if not isinstance(conditions, dict):
        return statement
    remaining: dict[str, Any] = {}
    found = False
    for operator, block in conditions.items():
        if operator.lower() not in _BOOL_OPERATORS or not isinstance(block, dict):
            remaining[operator] = block
            continue
        rest = {}
        for key, expected in block.items():
            if key.lower() != _SECURE_TRANSPORT_KEY:
                rest[key] = expected
                continue
            found = True
            values = expected if isinstance(expected, list) else [expected]
            # Several values of one key match if any matches (IAM's OR within a key).
            if not any(_as_bool(value) == secure for value in values):
                return None
        if rest:
            remaining[operator] = rest
    if not found:
        return statement
    applicable = copy.deepcopy(statement)
    if remaining:
        applicable["Condition"] = remaining
    else:
        del applicable["Condition"]
    return applicable


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    return None


_PARAMETER_SOURCE_USER = "user"


def describe_db_parameters(self: Any) -> Any:
    """Replacement for ``RDSResponse.describe_db_parameters`` (see server.py's docstring)."""
    from moto.core.responses import ActionResult

    group = _db_parameter_group(self, self.params.get("DBParameterGroupName"))
    source = (self.params.get("Source") or _PARAMETER_SOURCE_USER).lower()
    parameters = []
    if source == _PARAMETER_SOURCE_USER:
        parameters = [
            {**dict(parameter), "Source": _PARAMETER_SOURCE_USER}
            for parameter in group.parameters.values()
        ]
    return ActionResult({"Parameters": parameters})


def reset_db_parameter_group(self: Any) -> Any:
    """``ResetDBParameterGroup``, which moto lacks: forget user-set parameters."""
    from moto.core.responses import ActionResult

    group = _db_parameter_group(self, self.params.get("DBParameterGroupName"))
    if str(self.params.get("ResetAllParameters", "")).lower() == "true":
        group.parameters.clear()
    else:
        for parameter in self.params.get("Parameters") or []:
            group.parameters.pop(parameter["ParameterName"], None)
    return ActionResult({"DBParameterGroupName": group.name})


def _db_parameter_group(response: Any, name: str | None) -> Any:
    from moto.rds.exceptions import DBParameterGroupNotFoundError

    # moto stores group names lowercased, as AWS treats them case-insensitively.
    groups = response.backend.describe_db_parameter_groups(
        {"db_parameter_group_name": (name or "").lower()}
    )
    if not name or not groups:
        raise DBParameterGroupNotFoundError(str(name))
    return groups[0]


def security_group_rule_description(rule: Any) -> str | None:
    """Replacement for the ``SecurityGroupRule.description`` property (server.py tells why)."""
    description: str | None
    if "Description" in rule.ip_range:  # a CIDR rule's, or set by ModifySecurityGroupRules
        description = rule.ip_range["Description"]
    else:
        description = rule.source_group.get("Description")
    return description


def master_user_secret_string(self: Any) -> str:
    """Patch e: the instance's own master username and a freshly generated password."""
    username = getattr(self.resource, "master_username", None) or "admin"
    return json.dumps({"username": username, "password": secrets.token_urlsafe(24)})


def lambda_code_url(function: Any) -> str | None:
    """Where this emulator serves the code of `function` (None outside a served request)."""
    scheme, host = current_scheme(), current_host()
    if not scheme or not host:
        return None
    return (
        f"{scheme}://{host}{LAMBDA_CODE_PATH}{function.account_id}/{function.region}/"
        f"{function.function_name}/{function.version}"
    )


def _patch_get_code(original: Callable[[Any], dict[str, Any]]) -> Callable[[Any], dict[str, Any]]:
    def get_code(self: Any) -> dict[str, Any]:
        response = original(self)
        url = lambda_code_url(self)
        if url and self.package_type == "Zip":
            response["Code"] = {"Location": url, "RepositoryType": "S3"}
        return response

    get_code.__stackrun_patched__ = True  # type: ignore[attr-defined]
    return get_code


# --- patch n: the CA certificate of a new RDS instance -----------------------------------------

# The CA RDS gives a new DB instance when the request names none and the account has no
# ModifyCertificates override: the Region's default for new instances.
RDS_DEFAULT_CA_FOR_NEW_INSTANCES = "rds-ca-rsa2048-g1"


def _patch_create_db_instance(
    original: Callable[[Any, dict[str, Any]], Any],
) -> Callable[[Any, dict[str, Any]], Any]:
    """Wrap ``RDSBackend.create_db_instance``: no CA asked for, the Region's default."""

    def create_db_instance(self: Any, db_kwargs: dict[str, Any]) -> Any:
        if not db_kwargs.get("ca_certificate_identifier"):
            db_kwargs = {**db_kwargs, "ca_certificate_identifier": RDS_DEFAULT_CA_FOR_NEW_INSTANCES}
        return original(self, db_kwargs)

    create_db_instance.__stackrun_patched__ = True  # type: ignore[attr-defined]
    return create_db_instance


# --- patch p: a resource id of its own for each RDS instance -----------------------------------

RESOURCE_ID_ALPHABET = string.ascii_uppercase + string.digits


def _patch_db_instance_init(original: Callable[..., None]) -> Callable[..., None]:
    """Wrap ``DBInstance.__init__``: a new ``DbiResourceId`` per instance, as RDS gives."""

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.dbi_resource_id = "db-" + "".join(
            secrets.choice(RESOURCE_ID_ALPHABET) for _ in range(26)
        )

    init.__stackrun_patched__ = True  # type: ignore[attr-defined]
    return init


def install_patches() -> None:
    """Apply the patches to moto's classes; safe to call more than once."""
    from moto.ec2.models.security_groups import SecurityGroupRule
    from moto.rds.responses import RDSResponse
    from moto.s3.models import FakeBucket

    # Each patch replaces a moto method with one of another signature on purpose (its
    # docstring says why): method-assign and assignment are what these lines do.
    FakeBucket.get_permission = bucket_get_permission  # type: ignore[method-assign,assignment]
    RDSResponse.describe_db_parameters = describe_db_parameters  # type: ignore[method-assign]
    RDSResponse.reset_db_parameter_group = reset_db_parameter_group  # type: ignore[attr-defined]
    rule_description = property(security_group_rule_description)
    SecurityGroupRule.description = rule_description  # type: ignore[method-assign,assignment]
    from moto.rds.models import MasterUserSecret

    MasterUserSecret._generate_secret_string = master_user_secret_string  # type: ignore[method-assign]
    from moto.rds.models import RDSBackend

    if not getattr(RDSBackend.create_db_instance, "__stackrun_patched__", False):
        RDSBackend.create_db_instance = _patch_create_db_instance(RDSBackend.create_db_instance)  # type: ignore[method-assign,assignment]
    from moto.rds.models import DBInstance

    if not getattr(DBInstance.__init__, "__stackrun_patched__", False):
        DBInstance.__init__ = _patch_db_instance_init(DBInstance.__init__)  # type: ignore[method-assign]
    from moto.awslambda.models import LambdaFunction

    if not getattr(LambdaFunction.get_code, "__stackrun_patched__", False):
        LambdaFunction.get_code = _patch_get_code(LambdaFunction.get_code)  # type: ignore[method-assign,assignment]
    cognito.install_patches()
    cloudwatch.install_patches()


def install_invoke(tls_dir: Path, host: str, port: int) -> None:
    """Patch l: Lambda's Invoke runs the version in the local runtime (emulator/invoke.py)."""
    from moto.awslambda.models import LambdaFunction
    from moto.awslambda.responses import LambdaResponse

    from stackrun.local.emulator.ca import certificate_paths
    from stackrun.local.emulator.invoke import EmulatorEndpoint, LocalInvoker

    address = f"[{host}]" if ":" in host else host
    invoker = LocalInvoker(
        EmulatorEndpoint(
            tls_dir=tls_dir,
            endpoint=f"https://{address}:{port}",
            ca_bundle=certificate_paths(tls_dir).ca_cert,
        )
    )

    def invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        return invoker.invoke(self, event)

    LambdaFunction._invoke_lambda = invoke_lambda  # type: ignore[method-assign]
    if not getattr(LambdaResponse.invoke, "__stackrun_patched__", False):
        LambdaResponse.invoke = _record_invoked_qualifier(LambdaResponse.invoke)  # type: ignore[method-assign]
    atexit.register(invoker.close)


def _record_invoked_qualifier(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap moto's Invoke handler: the qualifier the client asked for (the `Qualifier` query
    parameter, else the one in the function name), for invoke.py. moto reads the parameter
    as `qualifier` and so runs $LATEST for `Qualifier=live`, and hands `_invoke_lambda` only the
    version it resolved."""
    from stackrun.local.api.functions import split_function_arn
    from stackrun.local.emulator.invoke import invoked_qualifier

    def invoke(self: Any) -> Any:
        function_name = unquote(self.path.rsplit("/", 2)[-2])
        asked = (self.querystring.get("Qualifier") or [None])[0]
        token = invoked_qualifier.set(asked or split_function_arn(function_name)[1])
        try:
            return original(self)
        finally:
            invoked_qualifier.reset(token)

    invoke.__stackrun_patched__ = True  # type: ignore[attr-defined]
    return invoke
