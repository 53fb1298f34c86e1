"""The cutover gate (CONTROLS.md "Cutover gate"): plain checks a human approves against.

``cutover`` (GO/NO-GO), ``parity`` (a restored copy matches its source table by table), ``drill``
(the restore drill is fresh), ``approvals`` (the signed, append-only record of a GO; its parts in
``approval*``), ``archive`` (reports and receipts by digest), ``command`` (the CLI); the newest
CloudNativePG Backup is read by ``resources.cnpg_backups``. Reference: docs/gate.md.
Example: ``from railiance_conformance.gate.parity import compare``.
"""
