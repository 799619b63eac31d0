"""Settings of the conversation engine: which language model answers, how long it may take, how turns retry.

`AgentSettings` extends the shared `CommonSettings` (database, Redis, policy file) with the LLM
settings, read from `RINGPILOT_*` variables once per worker process by `agent.runtime`. API keys
are `SecretStr` and never appear in a repr or a log line. `provider_for` decides which provider
answers a conversation: its `spec.llm`, else the configured one, else `offline` when no key is set.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from controller.api.conversation import LLMRef, Provider
from controller.settings import ENV_PREFIX, CommonSettings

DEFAULT_MODELS = {
    Provider.ANTHROPIC: "claude-sonnet-5",
    Provider.OPENAI: "gpt-4o-mini",
    Provider.OFFLINE: "offline-router-1",
}


class AgentSettings(CommonSettings):
    """Settings of the conversation engine in `ringpilot worker`."""

    llm_provider: Provider | None = Field(
        None,
        description="anthropic, openai or offline; unset picks anthropic when an Anthropic key is set, "
        "openai when an OpenAI-compatible base URL is set, else offline",
    )
    llm_model: str | None = Field(None, max_length=128, description="Model id; unset uses the provider's default")
    anthropic_api_key: SecretStr | None = Field(None, repr=False, description="Anthropic API key (secret)")
    anthropic_base_url: str | None = Field(
        None, description="Messages API base URL; unset uses Anthropic's (set for proxies and tests)"
    )
    openai_api_key: SecretStr | None = Field(
        None, repr=False, description="Bearer token of the OpenAI-compatible endpoint (secret; optional)"
    )
    openai_base_url: str | None = Field(
        None, description="Base URL of an OpenAI-compatible chat-completions API, e.g. http://127.0.0.1:8000/v1"
    )
    llm_timeout_seconds: float = Field(60.0, gt=0, description="Timeout of one request to the language model")
    llm_max_retries: int = Field(2, ge=0, le=10, description="Transport retries of one request (429, 529, 5xx)")
    llm_max_tool_rounds: int = Field(6, ge=1, le=20, description="Model calls per turn before it must answer")
    llm_max_tokens: int = Field(1024, ge=64, le=64_000, description="Most tokens one model reply may have")
    turn_max_attempts: int = Field(
        8, ge=1, le=100, description="Tries of a turn whose model is unavailable before it is answered as failed"
    )
    turn_min_backoff_ms: int = Field(1000, gt=0, description="Delay before a turn's second try; doubles")
    turn_max_backoff_ms: int = Field(60_000, gt=0, description="Longest delay between two tries of a turn")
    context_messages: int = Field(10, ge=1, le=100, description="Messages of history given to the model")
    context_ttl_seconds: int = Field(300, ge=1, description="Life of a conversation's context in the Redis cache")
    breaker_fail_max: int = Field(5, ge=1, description="Consecutive failures that open a circuit breaker")
    breaker_reset_seconds: float = Field(60.0, gt=0, description="How long a breaker stays open before a probe")
    pool_max_size: int = Field(20, ge=2, description="PostgreSQL connections per worker process")

    @field_validator("turn_max_backoff_ms")
    @classmethod
    def _max_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        minimum = info.data.get("turn_min_backoff_ms")
        if minimum is not None and value < minimum:
            raise ValueError(f"must not be less than {ENV_PREFIX}TURN_MIN_BACKOFF_MS ({minimum})")
        return value

    @field_validator("anthropic_base_url", "openai_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    def default_provider(self) -> Provider:
        """The provider used when a conversation does not ask for one."""
        if self.llm_provider is not None:
            return self.llm_provider
        if self.anthropic_api_key is not None:
            return Provider.ANTHROPIC
        if self.openai_base_url is not None:
            return Provider.OPENAI
        return Provider.OFFLINE

    def provider_for(self, requested: LLMRef | None) -> tuple[Provider, str]:
        """The provider and model that answer a conversation whose spec.llm is `requested`."""
        provider = requested.provider if requested is not None else self.default_provider()
        if requested is not None and requested.model:
            return provider, requested.model
        if self.llm_model and provider is self.default_provider():
            return provider, self.llm_model
        return provider, DEFAULT_MODELS[provider]

    def backoff_ms(self, attempt: int) -> int:
        """Delay before try `attempt + 1` of a turn (attempt counts from 1), capped."""
        return int(min(self.turn_max_backoff_ms, self.turn_min_backoff_ms * 2 ** max(0, attempt - 1)))
