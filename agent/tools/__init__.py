"""The tools the model may call: one registry, one tool per module, shared lookups and resolution."""
