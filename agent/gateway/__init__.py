"""The chat gateway: HTTP + SSE in front of Conversation CRs, the web chat page, `ringpilot gateway`."""
