"""The registry allow-list entries of the policy (`risk.registries`) and the image tags that are refused.

A DeploymentTask's `spec.artifact` must start with an allowed repository; that repository's trust
level feeds the risk model's supply-chain factor (docs/domain.md §3.2). A mutable tag names no fixed
content, so it is never shipped.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from controller.api.risk_inputs import SupplyChainTrust


class RegistryTrust(BaseModel):
    """One image repository (prefix) the policy allows, and how far its supply chain is trusted."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    repository: str = Field(min_length=1, max_length=255, description="Prefix, e.g. registry.example.com/team")
    trust: SupplyChainTrust = Field(description="The supply-chain trust level of images from it")

    def matches(self, artifact: str) -> bool:
        prefix = self.repository.rstrip("/")
        return artifact == prefix or artifact.startswith(prefix + "/")


#: Image tags that name no fixed content and are refused (docs/domain.md §3.2).
MUTABLE_TAGS = frozenset({"latest"})
