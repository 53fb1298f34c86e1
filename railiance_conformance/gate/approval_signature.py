"""SSH signatures over an approval's payload, made and checked with ssh-keygen.

``sign`` (``ssh-keygen -Y sign`` in the suite's own namespace) and ``check_signature``
(``-Y check-novalidate`` for the contents, ``-Y verify`` against allowed_signers at the row's time
for the signer). Errors: ``ApprovalRefused`` when ssh-keygen is missing, fails to sign or does not
finish within the timeout (seconds). Rule: ssh-keygen(1), "-Y sign", "-Y verify", "-Overify-time".
"""
from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from railiance_conformance.gate.approval import NAMESPACE, ApprovalRefused

SIGN_TIMEOUT_S = 30.0
_FINGERPRINT = re.compile(r"\bkey (SHA256:[A-Za-z0-9+/=]+)")


def _ssh_keygen(argv: list[str], data: bytes, timeout_s: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["ssh-keygen", *argv], input=data, capture_output=True, timeout=timeout_s, check=False)
    except FileNotFoundError:
        raise ApprovalRefused("ssh-keygen not found: apt-get install openssh-client") from None
    except subprocess.TimeoutExpired:
        raise ApprovalRefused(f"ssh-keygen -Y {argv[1]} did not finish within {timeout_s} s "
                              "(a passphrase prompt? use ssh-agent)") from None


def _said(done: subprocess.CompletedProcess) -> str:
    """ssh-keygen's own words (stderr and stdout), one line; never key material (it prints none)."""
    text = (done.stderr + done.stdout).decode(errors="replace")
    return " ".join(line for line in text.split("\n") if line.strip() and "standard input" not in line)[:300]


def sign(data: bytes, signing_key: Path, *, timeout_s: float = SIGN_TIMEOUT_S) -> str:
    """``sign(payload, Path("~/.ssh/id_ed25519"))`` -> the armored ``-----BEGIN SSH SIGNATURE-----`` text.

    ``signing_key`` is a private key file, or a public key whose private half ssh-agent holds.
    """
    done = _ssh_keygen(["-Y", "sign", "-n", NAMESPACE, "-f", str(signing_key)], data, timeout_s)
    if done.returncode != 0 or b"BEGIN SSH SIGNATURE" not in done.stdout:
        raise ApprovalRefused(f"ssh-keygen -Y sign with {signing_key} failed: {_said(done)}")
    return done.stdout.decode().strip() + "\n"


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """``contents_ok``: the signature is valid for the data (by some key); ``signer_ok``: by a key that
    allowed_signers lets sign as the principal at that time. ``fingerprint`` of the signing key."""

    contents_ok: bool
    signer_ok: bool
    fingerprint: str
    detail: str


def check_signature(data: bytes, signature: str, principal: str, allowed_signers: Path, when_utc: str, *,
                    timeout_s: float = SIGN_TIMEOUT_S) -> SignatureCheck:
    """``check_signature(payload, sig, "ada@r.example", Path("allowed_signers"), "2026-11-27T09:30:00Z")``."""
    with tempfile.TemporaryDirectory(prefix="gate-sig-") as tmp:
        sig = Path(tmp) / "approval.sig"
        sig.write_text(signature)
        novalidate = _ssh_keygen(["-Y", "check-novalidate", "-n", NAMESPACE, "-s", str(sig)], data, timeout_s)
        found = _FINGERPRINT.search(novalidate.stdout.decode(errors="replace"))
        fingerprint = found[1] if found else "?"
        if novalidate.returncode != 0:
            return SignatureCheck(False, False, fingerprint, _said(novalidate))
        stamp = _verify_time(when_utc)
        argv = ["-Y", "verify", "-f", str(allowed_signers), "-I", principal, "-n", NAMESPACE, "-s", str(sig)]
        verified = _ssh_keygen([*argv, *([f"-Overify-time={stamp}"] if stamp else [])], data, timeout_s)
        return SignatureCheck(True, verified.returncode == 0, fingerprint, _said(verified))


def _verify_time(when_utc: str) -> str:
    try:
        return datetime.fromisoformat(when_utc).astimezone(timezone.utc).strftime("%Y%m%d%H%M%SZ")
    except ValueError:
        return ""
