"""One conversation turn: the worker that answers it, the engine's tool loop, prompts and status.

`worker.TurnWorker` locks the conversation, `engine.Engine` runs the model and tools, and
`status` says what the Conversation's status shows.
"""
