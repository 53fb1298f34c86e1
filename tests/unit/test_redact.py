"""What redact_url masks, and what it keeps (ssh users are not secrets)."""
import pytest

from railiance_conformance.redact import redact_url


@pytest.mark.parametrize("text,expected", [
    ("redis://:pw@valkey:6379/0", "redis://:***@valkey:6379/0"),
    ("https://tegwick:tok@gitea/x.git", "https://tegwick:***@gitea/x.git"),
    ("https://ghp_SECRET@gitea.example/x.git", "https://***@gitea.example/x.git"),
    ("fatal: cannot reach HTTP://tok@h/r", "fatal: cannot reach HTTP://***@h/r"),
    ("ssh://git@gitea-local/coulomb/r.git", "ssh://git@gitea-local/coulomb/r.git"),
    ("redis+cluster://:pw@h:6379/0?pool_size=100", "redis+cluster://:***@h:6379/0?pool_size=100"),
    ("no url here", "no url here"),
])
def test_redact_url(text, expected):
    assert redact_url(text) == expected
