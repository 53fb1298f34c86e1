"""go_url_parse follows Go's net/url.Parse (cases from Go's src/net/url/url_test.go), and Gitea's ToRedisURI on it."""
from __future__ import annotations

import pytest

from railiance_conformance.resources.endpoints import Endpoint, redis_endpoint, redis_url_rejected, to_redis_uri
from railiance_conformance.resources.go_url import GoURLError, go_url_parse


@pytest.mark.parametrize("raw,fields", [
    ("http://www.google.com", {"scheme": "http", "host": "www.google.com", "path": ""}),
    ("http://user:password@google.com", {"username": "user", "password": "password", "host": "google.com"}),
    ("http://j@ne:password@google.com", {"username": "j@ne", "password": "password", "host": "google.com"}),
    ("http://jane:p@ssword@google.com", {"username": "jane", "password": "p@ssword", "host": "google.com"}),
    ("http://j@ne:password@google.com/p@th?q=@go", {"username": "j@ne", "path": "/p@th", "raw_query": "q=@go"}),
    ("http://www.google.com/?q=go+language#foo", {"raw_query": "q=go+language", "fragment": "foo"}),
    ("http://www.google.com/?q=go+language#foo%26bar", {"fragment": "foo&bar"}),
    ("mailto:webmaster@golang.org", {"scheme": "mailto", "opaque": "webmaster@golang.org", "host": ""}),
    ("mysql://a,b,c/bar", {"host": "a,b,c", "path": "/bar"}),
    ("HTTP://www.google.com/", {"scheme": "http"}),
    ("http://192.168.0.1:8080/", {"host": "192.168.0.1:8080"}),
    ("http://[::1]:6379/0", {"host": "[::1]:6379", "path": "/0"}),
    ("redis://:p%23ss@valkey:6379/0", {"password": "p#ss", "host": "valkey:6379", "path": "/0"}),
    ("redis://:12#x@valkey:6379", {"host": ":12", "fragment": "x@valkey:6379"}),  # the '#' cut leaves a valid URL
])
def test_parse(raw, fields):
    url = go_url_parse(raw)
    for name, value in fields.items():
        assert getattr(url, name) == value, (raw, name, url)


@pytest.mark.parametrize("raw,why", [
    ("http://%41:8080/", "invalid URL escape in the host"),     # %xx in a host only for bytes >= 0x80
    ("http://[::1]:namedport", "invalid port after host"),
    ("http://x:namedport", "invalid port after host"),
    ("http://a b.com/", "invalid character in host name"),
    ("http://us er@host/", "net/url: invalid userinfo"),
    ("http://\x7f.com/", "net/url: invalid control character in URL"),
    (":foo", "missing protocol scheme"),
    ("http://www.google.com/%zz", "invalid URL escape in the path"),
    ("redis://:p#ss@valkey:6379/0", "invalid port after host"),    # Parse cuts at '#': authority ":p"
    ("redis://default:S/x@y@valkey:6379/2", "invalid port after host"),  # the authority ends at the first '/'
    ("redis://:pässword@valkey:6379/0", "net/url: invalid userinfo"),  # validUserinfo: ASCII only
])
def test_parse_errors(raw, why):
    with pytest.raises(GoURLError) as caught:
        go_url_parse(raw)
    assert str(caught.value) == why
    assert "ss" not in str(caught.value) or "ss" in why  # the message never quotes the input


def test_gitea_falls_back_to_its_default_when_parse_fails():
    """modules/nosql/redis.go ToRedisURI: url.Parse fails -> redis://127.0.0.1:6379/0 + key=value fields."""
    broken = "redis://:p#ss@valkey.platform.svc.cluster.local:6379/1"
    assert redis_url_rejected(broken) == "invalid port after host"
    assert to_redis_uri(broken).startswith("redis://127.0.0.1:6379/0")
    assert redis_endpoint(broken) == Endpoint("redis", "127.0.0.1", 6379, "0")
    assert redis_endpoint("redis://:p%23ss@valkey.platform:6379/1", client_namespace="gitea") == \
        Endpoint("redis", "valkey.platform.svc.cluster.local", 6379, "1")
    assert redis_url_rejected("network=tcp,addr=valkey:6379,db=0") is None
