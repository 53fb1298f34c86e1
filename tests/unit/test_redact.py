"""One redaction step: every secret form masked, non-secrets kept; a sentinel planted in each form never survives."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from railiance_conformance.recorder import sanitize
from railiance_conformance.redact import MASK, redact, redact_text, redact_url


@pytest.mark.parametrize("text,expected", [
    ("redis://:pw@valkey:6379/0", "redis://:***@valkey:6379/0"),
    ("https://tegwick:tok@gitea/x.git", "https://tegwick:***@gitea/x.git"),
    ("https://ghp_SECRET@gitea.example/x.git", "https://***@gitea.example/x.git"),
    ("fatal: cannot reach HTTP://tok@h/r", "fatal: cannot reach HTTP://***@h/r"),
    ("ssh://git@gitea-local/coulomb/r.git", "ssh://git@gitea-local/coulomb/r.git"),
    ("git@gitea-local:coulomb/r.git", "git@gitea-local:coulomb/r.git"),
    ("redis+cluster://:pw@h:6379/0?pool_size=100", "redis+cluster://:***@h:6379/0?pool_size=100"),
    ("no url here", "no url here"),
    # each secret form operators write, one example each
    ("network=tcp,addr=valkey.platform.svc.cluster.local:6379,password=S3cret,db=0,pool_size=100",
     "network=tcp,addr=valkey.platform.svc.cluster.local:6379,password=***,db=0,pool_size=100"),
    ("oauth2:TOKEN@gitea.example.invalid:org/repo.git", "oauth2:***@gitea.example.invalid:org/repo.git"),
    ("https://gitea.example.invalid/org/r.git?access_token=abc", "https://gitea.example.invalid/org/r.git?access_token=***"),
    ("https://u:pa/ss@w@rd@host/x.git", "https://u:***@host/x.git"),
    ("u:pa@ss@host:org/r.git", "u:***@host:org/r.git"),
    ("host=db user=gitea password='a b\\'c' dbname=x", "host=db user=gitea password=*** dbname=x"),
    ("PASSWD = hunter2", "PASSWD = ***"),
    ('{"password": "x"}', '{"password": "***"}'),
    ("postgresql://g:pw@h/db?sslmode=require&password=y", "postgresql://g:***@h/db?sslmode=require&password=***"),
    ("Authorization: Bearer abc.def", "Authorization: Bearer ***"),
])
def test_redact_text(text, expected):
    assert redact_text(text) == expected
    assert redact_url(text) == expected


def test_mapping_entries_named_as_secrets_are_masked_names_of_secrets_are_not():
    assert redact({"password": "x", "secret_name": "gitea-db-credentials", "n": ("redis://:p@h",)}) == \
        {"password": MASK, "secret_name": "gitea-db-credentials", "n": ("redis://:***@h",)}


FORMS = [
    "redis://:{s}@valkey:6379/0", "redis://default:{s}@valkey:6379/0", "https://{s}@gitea.example.invalid/o/r.git",
    "https://tegwick:{s}@gitea.example.invalid/o/r.git", "oauth2:{s}@gitea.example.invalid:org/repo.git",
    "https://gitea.example.invalid/o/r.git?access_token={s}", "https://h/x?a=1&private_token={s}&b=2",
    "network=tcp,addr=valkey:6379,password={s},db=0,pool_size=100", "addrs=valkey:6379 password={s} db=0",
    "PASSWD = {s}", "password: {s}", "host=db user=g password={s} dbname=x", "host=db password='{s}' port=5432",
    "postgresql://gitea:{s}@db:5432/gitea", "postgres://db/gitea?sslmode=disable&password={s}",
    '{{"token": "{s}"}}', "Authorization: Bearer {s}", "INTERNAL_TOKEN={s}", "SECRET_KEY = {s}",
]
# what a password can hold in each form without the form itself ending it (URLs: RFC 3986 userinfo
# plus the raw "/" and "@" people write anyway)
URL_SAFE = st.text(st.sampled_from("abcXYZ0123456789-._~!$&'()*+,;=%/@"), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(form=st.sampled_from(FORMS), tail=URL_SAFE)
def test_a_sentinel_in_every_form_never_survives(form, tail):
    secret = "SNTL" + "".join(c for c in tail if c not in " '\",;&#") + "Z"
    text = form.format(s=secret)
    out = sanitize({"observed": text, "evidence": (("x", [text]),)})
    assert secret not in repr(out), (text, out)


def test_undecodable_bytes_are_shown_escaped():
    raw = b"tegwick hard nproc 1024 # caf\xe9".decode("utf-8", "surrogateescape")
    assert sanitize(raw) == "tegwick hard nproc 1024 # caf\\xe9"
