"""Ringpilot agent: the conversation side (LLM providers, tools, chat state, gateway, CLI)."""

__version__ = "0.1.0"
