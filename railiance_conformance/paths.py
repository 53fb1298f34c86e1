"""Where the suite's own files are: the checkout root and the bundled policies. Imports nothing heavy,
so the plugin can name the default ``--policy-dir`` before ``early_inventory`` starts its reader."""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POLICY_DIR = REPO_ROOT / "policies"
