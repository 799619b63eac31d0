import os

# The tests read spans from an in-memory exporter; without an OTLP endpoint the processes would not record
# them (controller/telemetry/tracing.py `recording_sampler`), so the test run samples every span.
os.environ.setdefault("OTEL_TRACES_SAMPLER", "parentbased_always_on")

pytest_plugins = ["tests.fixtures.services", "tests.fixtures.kube", "tests.fixtures.stack"]
