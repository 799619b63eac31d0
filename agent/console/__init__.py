"""The console: `ringpilot chat`, `approve`, `tasks` and `trace`, a terminal client of the chat gateway."""
