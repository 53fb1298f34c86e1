"""Host kinds about user accounts: a user's uid in the passwd database.
"""
from __future__ import annotations

from railiance_conformance.controls.grammar import USER, Params
from railiance_conformance.finding import Outcome
from railiance_conformance.probes import facts as F
from railiance_conformance.probes.host_facts import HostFacts
from railiance_conformance.vocabulary import check_kind


@check_kind("host.user.uid", rf"user {USER} has uid (?P<uid>\d+)", target="host",
            convert=lambda g: {"user": g["user"], "uid": int(g["uid"])},
            schema={"required": ["user", "uid"], "properties": {"uid": {"type": "integer", "minimum": 0}}},
            facts=lambda p: F.account(p["user"]))
def user_uid(facts: HostFacts, params: Params) -> Outcome:
    """The user exists with the uid (a slice is named after the uid)."""
    user = params["user"]
    passwd = facts.section(f"passwd {user}")
    if passwd.rc == 2:  # getent: key not found
        return Outcome.compare(params["uid"], f"no user {user!r}")
    entry = facts.text(f"passwd {user}", what="the passwd database").strip().split(":")
    return Outcome.compare(params["uid"], int(entry[2]), evidence={"user": user})
