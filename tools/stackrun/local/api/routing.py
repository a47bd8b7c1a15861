"""Alias routing weights: which version of a weighted alias serves one invocation.

An alias points at its primary version (FunctionVersion) and may send a share of the
invocations to other versions (RoutingConfig.AdditionalVersionWeights, e.g. {"7": 0.25}).
Lambda picks the version for each invocation independently; the primary gets what the
additional versions leave (1 - the sum of their weights). Here one draw of a random number
in [0, 1) is compared with the cumulative weights of the additional versions; a draw past
them all goes to the primary. The random source is injected, so the choice can be tested.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Returns a float in [0, 1), like random.random.
RandomSource = Callable[[], float]


@dataclass(frozen=True)
class AliasRouting:
    """Where an alias sends invocations: its primary version and the weighted others."""

    primary_version: str
    additional_weights: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_alias(cls, alias: Mapping[str, Any]) -> AliasRouting:
        """From a GetAlias (or CreateAlias/UpdateAlias) answer."""
        routing = alias.get("RoutingConfig") or {}
        weights = routing.get("AdditionalVersionWeights") or {}
        return cls(
            primary_version=str(alias["FunctionVersion"]),
            additional_weights={str(version): float(weight) for version, weight in weights.items()},
        )

    def choose_version(self, random_source: RandomSource = random.random) -> str:
        """The version that serves one invocation, drawn by weight."""
        if not self.additional_weights:
            return self.primary_version
        draw = random_source()
        cumulative = 0.0
        for version, weight in sorted(self.additional_weights.items()):
            cumulative += weight
            if draw < cumulative:
                return version
        return self.primary_version
