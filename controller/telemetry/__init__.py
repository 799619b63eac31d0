"""Observability: Prometheus metrics, OpenTelemetry traces and JSON logs, defined once for every process.

`metrics` names every metric, `tracing` sets up the tracer and carries trace context through dramatiq
messages, `logformat` formats log lines and stamps them with the correlation and trace ids, `serving`
serves `/metrics`. Importing this package imports nothing heavy; each module is imported where used.
"""
