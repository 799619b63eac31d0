"""The offline intent router: entities, intents and routing decisions, pure functions without I/O."""
