"""Host kinds about files: a regular file (size, owner, mode) and a user's private key.
"""
from __future__ import annotations

from typing import Any

from railiance_conformance.controls.grammar import USER, Params
from railiance_conformance.controls.host import GIB
from railiance_conformance.finding import Outcome
from railiance_conformance.probes import facts as F
from railiance_conformance.probes.host_facts import HostFacts
from railiance_conformance.vocabulary import check_kind


@check_kind("host.file", r"(?P<path>/[A-Za-z0-9._/@+-]*) is a regular file(?: of (?P<size_gib>\d+) GiB)?, "
                         r"owned by (?P<owner>[a-z_][a-z0-9_-]*), mode (?P<mode>0?[0-7]{3})", target="host",
            convert=lambda g: {"path": g["path"], "owner": g["owner"], "mode": g["mode"].rjust(4, "0"),
                               **({"size_gib": int(g["size_gib"])} if g["size_gib"] else {})},
            schema={"required": ["path", "owner", "mode"],
                    "properties": {"path": {"type": "string", "pattern": r"^/[A-Za-z0-9._/@+-]*$"},
                                   "size_gib": {"type": "integer", "minimum": 1}, "owner": {"type": "string"},
                                   "mode": {"type": "string", "pattern": "^0[0-7]{3}$"}}},
            facts=lambda p: [F.stat(p["path"])])
def host_file(facts: HostFacts, params: Params) -> Outcome:
    """A regular file with an owner, a mode and (optionally) an exact size in GiB."""
    path = params["path"]
    expected = {"type": "regular file", "owner": params["owner"], "mode": params["mode"]}
    if "size_gib" in params:
        expected["size_bytes"] = params["size_gib"] * GIB
    stat = F.read_stat(facts, path)
    if stat is None:
        return Outcome.compare(expected, "absent", evidence={"path": path})
    observed: dict[str, Any] = {"type": "regular file" if stat.is_regular else stat.kind, "owner": stat.owner,
                                "mode": stat.mode}
    if "size_bytes" in expected:
        observed["size_bytes"] = stat.size
    return Outcome.compare(expected, observed, evidence={"path": path, "allocated_bytes": stat.blocks * 512})


@check_kind("host.private_key", rf"{USER}'s (?P<path>~/[A-Za-z0-9._/@+-]+) is a private (?P<key_type>ed25519|ecdsa|rsa) key, "
                                r"owned by (?P<owner>[a-z_][a-z0-9_-]*), mode (?P<mode>0?[0-7]{3})", target="host",
            convert=lambda g: {**g, "mode": g["mode"].rjust(4, "0")},
            schema={"required": ["user", "path", "key_type", "owner", "mode"],
                    "properties": {"key_type": {"enum": ["ed25519", "ecdsa", "rsa"]},
                                   "mode": {"type": "string", "pattern": "^0[0-7]{3}$"}}},
            facts=lambda p: [*F.account(p["user"]), F.stat(p["path"], p["user"]), F.pubkey_type(p["path"], p["user"])])
def private_key(facts: HostFacts, params: Params) -> Outcome:
    """A private key in the user's home: owner, mode and key type (from its .pub; the key is never read)."""
    user, path = params["user"], params["path"]
    expected = {"type": "regular file", "owner": params["owner"], "mode": params["mode"], "key_type": params["key_type"]}
    stat = F.read_stat(facts, path, user)
    if stat is None:
        return Outcome.compare(expected, "absent", evidence={"path": path})
    pub = facts.section(F.pubkey_type(path, user).section)
    if pub.rc != 0:
        return Outcome.error(f"cannot tell the key type of {path}: no readable {path}.pub beside it "
                             f"(the private key itself is never read)", expected=expected)
    algorithm = pub.out.strip()
    observed_type = "ed25519" if algorithm == "ssh-ed25519" else algorithm.removeprefix("ssh-").split("-")[0]
    observed = {"type": "regular file" if stat.is_regular else stat.kind, "owner": stat.owner,
                "mode": stat.mode, "key_type": observed_type}
    return Outcome.compare(expected, observed, evidence={"path": path, "public_key_algorithm": algorithm})
