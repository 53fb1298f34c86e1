"""The cutover gate (CONTROLS.md "Cutover gate"): plain checks a human approves against.

``parity`` (a restored copy matches its source table by table), ``backups`` (the newest
CloudNativePG Backup completed recently) and ``approvals`` (the append-only record of a GO).
Example: ``from railiance_conformance.gate.parity import compare``.
"""
