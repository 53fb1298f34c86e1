
from pathlib import Path

# A copy of the workplan the suite verifies (RAIL-HO-WP-0004, as shared/seed/ has it), for the
# demo and the tests; tests/repo/test_workplan.py checks it against shared/seed/ when that is there.
SEED_WORKPLAN = Path(__file__).parent / "workplans" / "RAIL-HO-WP-0004-production-readiness.md"
