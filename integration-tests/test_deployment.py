"""What was deployed: every function's ``live`` alias is its newest published version, and the
API invokes that alias (never ``$LATEST``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fleet_itest import Target


def _pages(call: Any, key: str, **args: Any) -> Iterator[dict[str, Any]]:
    """Items of an apigatewayv2 list call, following ``NextToken``."""
    while True:
        page = call(**args)
        yield from page.get(key, ())
        token = page.get("NextToken")
        if not token:
            return
        args["NextToken"] = token


def test_alias_points_at_the_newest_published_version(target: Target, lambda_client: Any) -> None:
    assert target.functions, f"{target.api_stack}.functions is empty"
    paginator = lambda_client.get_paginator("list_versions_by_function")
    problems = []
    for key, function in sorted(target.functions.items()):
        name, alias = function["function_name"], function["alias_name"]
        found = lambda_client.get_alias(FunctionName=name, Name=alias)
        published = [
            int(version["Version"])
            for page in paginator.paginate(FunctionName=name)
            for version in page.get("Versions", ())
            if version["Version"] != "$LATEST"
        ]
        newest = str(max(published)) if published else None
        current = found["FunctionVersion"]
        if not current == newest == str(function["version"]):
            problems.append(
                f"{key} ({name}): alias {alias!r} -> version {current}, newest published "
                f"version {newest}, output `version` {function['version']}"
            )
        if found.get("AliasArn") != function["alias_arn"]:
            problems.append(
                f"{key} ({name}): alias ARN {found.get('AliasArn')} != output alias_arn "
                f"{function['alias_arn']}"
            )
    assert not problems, "live aliases out of date:\n  " + "\n  ".join(problems)


def test_every_route_invokes_its_function_alias(target: Target, apigateway_client: Any) -> None:
    api_id = target.api_outputs["api_id"]
    deployed = {
        route["RouteKey"]: route.get("Target", "")
        for route in _pages(apigateway_client.get_routes, "Items", ApiId=api_id)
    }
    integrations = {
        item["IntegrationId"]: item.get("IntegrationUri", "")
        for item in _pages(apigateway_client.get_integrations, "Items", ApiId=api_id)
    }
    assert target.routes, f"{target.api_stack}.routes is empty"
    problems = []
    for route_key, key in sorted(target.routes.items()):
        function = target.functions[key]
        if route_key not in deployed:
            problems.append(f"{route_key}: not a route of API {api_id} (has {sorted(deployed)})")
            continue
        uri = integrations.get(deployed[route_key].removeprefix("integrations/"))
        if uri not in (function["invoke_arn"], function["alias_arn"]):
            problems.append(
                f"{route_key}: integration URI {uri!r}, expected the alias of {key} "
                f"({function['alias_arn']})"
            )
    assert not problems, "routes not wired to the live aliases:\n  " + "\n  ".join(problems)
