"""Moving a function's alias: the one UpdateAlias that canary releases and rollback share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def route(
    lambda_client: Any,
    function: str,
    alias: str,
    version: str,
    weights: Mapping[str, float] | None = None,
) -> None:
    """Point `alias` at `version`; `weights` (version -> share) route part elsewhere, none: all."""
    lambda_client.update_alias(
        FunctionName=function,
        Name=alias,
        FunctionVersion=version,
        RoutingConfig={"AdditionalVersionWeights": dict(weights or {})},
    )
