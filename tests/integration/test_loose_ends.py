"""Loose ends of the core found by trying it as a new user (issue 11, section 9)."""
import base64
import json
import subprocess

import pytest
import requests

from conftest import BIN, raw, simple_config, status_of


@pytest.fixture
def default_gateway(gateway):
    # The embedded default config, but on free ports: the same routes as `sluice serve`.
    from conftest import ROOT
    text = open(f"{ROOT}/Sources/SluiceConfig/Source/Embedded.swift").read()
    yaml = text.split('"""')[1]
    yaml = yaml.replace("0.0.0.0:8080", "127.0.0.1:{{PORT}}").replace("127.0.0.1:9901", "127.0.0.1:{{ADMIN_PORT}}")
    return gateway(yaml)


def test_echo_includes_the_body(default_gateway):
    gw = default_gateway
    r = requests.post(gw.url("/echo?x=1"), data="hello body")
    j = r.json()
    assert j["body"] == "hello body" and j["body_bytes"] == 10 and j["body_truncated"] is False
    assert j["query"] == "x=1" and j["method"] == "POST"
    blob = bytes(range(256))
    j = requests.post(gw.url("/echo"), data=blob).json()
    assert base64.b64decode(j["body_base64"]) == blob and "body" not in j
    big = b"a" * 100_000
    j = requests.post(gw.url("/echo"), data=big).json()
    assert len(j["body"]) == 65536 and j["body_bytes"] == 100_000 and j["body_truncated"] is True
    # chunked, and keep-alive goes on afterwards on the same connection
    s = requests.Session()
    j = s.post(gw.url("/echo"), data=iter([b"part1-", b"part2"])).json()
    assert j["body"] == "part1-part2"
    assert s.get(gw.url("/echo")).json()["body"] == ""


@pytest.fixture
def recording(gateway, upstream):
    up = upstream()
    gw = gateway(simple_config(up.address))
    yield gw, up
    assert gw.alive()


def test_comma_in_host_is_400(recording):
    gw, up = recording
    for host in [b"a,b", b"a, b", b"example.com,evil.com"]:
        out = raw(gw.port, b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        assert status_of(out) == 400, host
    assert len(up.requests) == 0


@pytest.mark.parametrize("target", [
    b"/a%0d%0aX-Injected:%201", b"/a%0aX", b"/a%09b", b"/a%7f", b"/%c0%ae%c0%ae/admin", b"/%ff", b"/%e2%82",
    b"/%ed%a0%80",
])
def test_encoded_control_bytes_and_bad_utf8_in_path_are_400(recording, target):
    gw, up = recording
    out = raw(gw.port, b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    assert status_of(out) == 400, out
    assert len(up.requests) == 0


def test_valid_encoded_utf8_and_query_newlines_pass(recording):
    gw, up = recording
    out = raw(gw.port, b"GET /caf%C3%A9?t=a%0Ab HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status_of(out) == 200
    assert up.last.target == "/caf%C3%A9?t=a%0Ab"


def test_make_release_bakes_revision_and_static_runtime():
    """The README's documented build (`make release`) gives a binary that knows its revision.
    Run only when a release binary from `make release` exists (the bench builds one)."""
    import os
    from conftest import ROOT
    release = os.path.join(ROOT, ".build", "release", "sluice")
    if not os.path.exists(release):
        pytest.skip("no release build")
    out = subprocess.run([release, "version"], capture_output=True, text=True).stdout
    if "revision: unknown" in out:
        pytest.skip("release binary built without `make release`")
    assert "built: unknown" not in out
    ldd = subprocess.run(["ldd", release], capture_output=True, text=True).stdout
    assert "libswiftCore" not in ldd
