"""Messaging: the dramatiq broker on Redis and enqueueing by actor name.

The controller enqueues work without importing any actor module, so it never loads worker code.
"""
