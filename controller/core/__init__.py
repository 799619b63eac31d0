"""The shared vocabulary the engines use: outcomes, conditions, errors, change windows and write lag.

Pure and small; imported by `reconcile`, `orchestration`, `remediation` and the agent.
"""
