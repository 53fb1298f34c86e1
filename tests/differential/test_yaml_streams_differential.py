"""YAML as its producers write it, read by the repo controls as PyYAML reads the same bytes.

* Workplan front matter: generated mappings, with or without a UTF-8 byte-order mark, CRLF line
  ends and blank lines before ``---``; ``workplan.read_front_matter`` must equal the first document
  PyYAML reads from the file's bytes (``yaml.safe_load_all(bytes)``: PyYAML detects the encoding
  and drops the BOM, yaml/reader.py).
* SOPS files as ``sops`` writes a multi-document file (stores/yaml/store.go ``EmitEncryptedFile``: a
  ``sops:`` block in every document), with an optional BOM, a leading ``---`` and ``...`` ends:
  ``check_sops_file`` must never call a stream PyYAML reads "not valid YAML", must name exactly the
  plaintext leaves that were generated (``[document N]`` after the first), and must name every
  document without sops metadata.
"""
from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from railiance_conformance.resources.sops_files import check_sops_file
from railiance_conformance.workplan import read_front_matter
from railiance_testbed.repos import enc

KEY = st.sampled_from(["id", "status", "title", "type", "repo", "superseded_by", "owner"])
SCALAR = st.one_of(st.sampled_from(["superseded", "active", "RAIL-PL-WP-0001", "Platform: baseline", "ä ö", "1.0"]),
                   st.integers(0, 99), st.booleans())
FRONT = st.fixed_dictionaries({"mapping": st.dictionaries(KEY, SCALAR, min_size=1, max_size=5), "bom": st.booleans(),
                               "crlf": st.booleans(), "blank": st.integers(0, 2)})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=FRONT)
def test_front_matter_equals_pyyamls_first_document(case, tmp_path_factory):
    body = yaml.safe_dump(case["mapping"], allow_unicode=True, sort_keys=False)
    text = "\n" * case["blank"] + "---\n" + body + "---\n\n# Title\n\nSome text.\n"
    if case["crlf"]:
        text = text.replace("\n", "\r\n")
    data = ("\ufeff" if case["bom"] else "").encode() + text.encode("utf-8")
    path = tmp_path_factory.mktemp("wp") / "RAIL-XX-WP-0001.md"
    path.write_bytes(data)
    assert read_front_matter(path) == next(yaml.safe_load_all(data))


LEAF = st.tuples(st.sampled_from(["password", "token", "user", "host"]), st.booleans())  # (key, encrypted?)
DOCUMENT = st.fixed_dictionaries({"leaves": st.dictionaries(st.sampled_from(["password", "token", "user", "host"]),
                                                            st.booleans(), min_size=1, max_size=4),
                                  "sops": st.booleans(), "end": st.booleans()})
STREAM = st.fixed_dictionaries({"documents": st.lists(DOCUMENT, min_size=1, max_size=3), "bom": st.booleans(),
                                "leading": st.booleans()})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=STREAM)
def test_sops_streams_are_read_document_by_document(case, tmp_path_factory):
    parts, want_plain, want_problems = [], [], []
    many = len(case["documents"]) > 1
    for number, document in enumerate(case["documents"], 1):
        body = {"kind": "Secret", "stringData": {k: enc(k, f"d{number}") if encrypted else f"plain-{k}"
                                                for k, encrypted in document["leaves"].items()}}
        if document["sops"]:
            body["sops"] = {"mac": enc("m", f"mac{number}"), "version": "3.9.4"}
            prefix = f"[document {number}] " if number > 1 else ""
            want_plain += [f"{prefix}kind"] + [f"{prefix}stringData.{k}" for k, e in document["leaves"].items() if not e]
        else:
            want_problems.append(f"{'document %d: ' % number if many else ''}no top-level sops metadata: not SOPS-encrypted")
        parts.append(yaml.safe_dump(body, sort_keys=False) + ("...\n" if document["end"] else ""))
    text = ("---\n" if case["leading"] else "") + "---\n".join(parts)
    data = ("\ufeff" if case["bom"] else "").encode() + text.encode()
    path = tmp_path_factory.mktemp("sops") / "secrets.sops.yaml"
    path.write_bytes(data)
    assert len([d for d in yaml.safe_load_all(data) if d is not None]) == len(case["documents"])  # PyYAML reads it
    result = check_sops_file(path)
    assert sorted(result.plaintext) == sorted(want_plain), (text, result)
    assert list(result.problems) == want_problems, (text, result)
