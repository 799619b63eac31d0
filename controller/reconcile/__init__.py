"""Level-based reconcilers, one module per kind: spec + observed state in, desired status out.

They take typed resources and return an `Outcome`; they never import Kopf, so they are
tested as plain functions. `controller.operator.handlers` calls them and applies the outcome.
"""
