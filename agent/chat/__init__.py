"""Chat state: conversations, messages and turn logs in PostgreSQL, with the hot context cached in Redis."""
