"""Choosing and caching the provider that answers a conversation.

`ProviderFactory.get` reads the conversation's `spec.llm` and the settings (`AgentSettings.provider_for`)
and builds the provider once per (provider, model) per process, so SDK clients and HTTP sessions are
reused across turns. A provider asked for but not configured is a permanent `TurnFailed`.
"""

from __future__ import annotations

from agent.errors import TurnFailed
from agent.llm.base import LLMProvider
from agent.llm.chatcompletions import OpenAICompatibleProvider
from agent.llm.claude import AnthropicProvider
from agent.llm.offline import OfflineProvider
from agent.settings import AgentSettings
from controller.api.conversation import LLMRef, Provider


class ProviderFactory:
    """Builds providers from settings; one instance per (provider, model)."""

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self._providers: dict[tuple[Provider, str], LLMProvider] = {}

    def get(self, requested: LLMRef | None = None) -> LLMProvider:
        provider, model = self.settings.provider_for(requested)
        key = (provider, model)
        if key not in self._providers:
            self._providers[key] = self._build(provider, model)
        return self._providers[key]

    def _build(self, provider: Provider, model: str) -> LLMProvider:
        s = self.settings
        if provider is Provider.ANTHROPIC:
            if s.anthropic_api_key is None:
                raise TurnFailed(
                    "ProviderNotConfigured",
                    "The anthropic provider was asked for, but RINGPILOT_ANTHROPIC_API_KEY is not set",
                )
            return AnthropicProvider(
                api_key=s.anthropic_api_key.get_secret_value(),
                model=model,
                base_url=s.anthropic_base_url,
                timeout_seconds=s.llm_timeout_seconds,
                max_retries=s.llm_max_retries,
            )
        if provider is Provider.OPENAI:
            if s.openai_base_url is None:
                raise TurnFailed(
                    "ProviderNotConfigured",
                    "The openai provider was asked for, but RINGPILOT_OPENAI_BASE_URL is not set",
                )
            key = s.openai_api_key.get_secret_value() if s.openai_api_key is not None else None
            return OpenAICompatibleProvider(
                base_url=s.openai_base_url,
                model=model,
                api_key=key,
                timeout_seconds=s.llm_timeout_seconds,
                max_retries=s.llm_max_retries,
            )
        return OfflineProvider(model)

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
        self._providers.clear()
