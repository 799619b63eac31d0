"""The shared vocabulary the engines use: outcomes, conditions, errors and change windows.

Pure and small; imported by `reconcile`, `orchestration`, `remediation` and the agent.
"""
