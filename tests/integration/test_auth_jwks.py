"""JWKS from a real key server (http, and https with a test CA), key rotation without a
reload, a key server that is down, stalls or answers garbage."""
import json
import time
import uuid

import pytest
import requests
import trustme

from authkit import JWKSServer, KeyPair, claims
from test_auth import auth_config, bearer, start


def url_provider(url, extra=""):
    return f"""  jwt:
    type: jwt
    issuer: https://id.test
    audiences: [api]
    jwks_url: {url}
    jwks_refresh: 10m
{extra}
"""


@pytest.fixture
def server():
    made = []

    def make(keys, tls_cert=None):
        s = JWKSServer(keys, tls_cert=tls_cert)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def wait_status(gw, token, status, timeout=8.0):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = requests.get(gw.url("/x"), headers=bearer(token)).status_code
        if last == status:
            return True
        time.sleep(0.1)
    raise AssertionError(f"wanted {status}, last {last}")


def test_jwks_url_over_http_and_rotation_without_reload(gateway, upstream, server):
    a = KeyPair("RS256", "a")
    b = KeyPair("ES256", "b")
    js = server([a])
    up = upstream()
    gw = start(gateway, up, auth_config(url_provider(js.url)))
    wait_status(gw, a.token(), 200)
    fetches = js.fetches
    # A new kid appears at the key server: the first token naming it triggers one refresh.
    js.keys = [a, b]
    assert requests.get(gw.url("/x"), headers=bearer(b.token())).status_code == 200
    assert js.fetches == fetches + 1
    # The old key leaves; tokens signed by it stop working once the keys are refreshed
    # (the next unknown kid, after the 5 s on-demand interval).
    js.keys = [b]
    time.sleep(5.2)
    c = KeyPair("ES256", "c")
    assert requests.get(gw.url("/x"), headers=bearer(c.token())).status_code == 401
    assert requests.get(gw.url("/x"), headers=bearer(a.token())).status_code == 401
    assert requests.get(gw.url("/x"), headers=bearer(b.token())).status_code == 200
    metrics = requests.get(gw.admin("/metrics")).text
    assert 'sluice_jwks_fetches_total{provider="jwt",result="success"}' in metrics
    assert 'sluice_jwks_waiting_for_keys{provider="jwt"} 0' in metrics


def test_random_kid_flood_costs_one_fetch(gateway, upstream, server):
    a = KeyPair("ES256", "a")
    js = server([a])
    up = upstream()
    gw = start(gateway, up, auth_config(url_provider(js.url)))
    wait_status(gw, a.token(), 200)
    before = js.fetches
    s = requests.Session()
    for _ in range(200):
        tok = a.token(headers={"kid": uuid.uuid4().hex})
        assert s.get(gw.url("/x"), headers=bearer(tok)).status_code == 401
    assert js.fetches - before <= 2, js.fetches - before
    assert len(up.requests) == 1


def test_key_server_down_at_start_then_up(gateway, upstream, server):
    a = KeyPair("ES256", "a")
    js = server([a])
    js.mode = "down"
    up = upstream()
    gw = start(gateway, up, auth_config(url_provider(js.url)))
    r = requests.get(gw.url("/x"), headers=bearer(a.token()))
    assert r.status_code == 503 and r.json()["error"] == "unavailable"
    assert requests.get(gw.url("/x")).status_code == 401  # no token: still a 401
    assert requests.get(gw.url("/open")).status_code == 200  # other routes serve
    assert requests.get(gw.admin("/readyz")).status_code == 200
    assert 'sluice_jwks_waiting_for_keys{provider="jwt"} 1' in requests.get(gw.admin("/metrics")).text
    assert "no keys yet" in gw.stderr_text()
    js.mode = "ok"
    wait_status(gw, a.token(), 200, timeout=10)
    assert len(up.requests) == 2


def test_failed_refresh_use_cached_vs_deny(gateway, upstream, server):
    a = KeyPair("ES256", "a")
    for policy, expect in [("use_cached", 200), ("deny", 503)]:
        js = server([a])
        up = upstream()
        gw = start(gateway, up, auth_config(url_provider(js.url, f"    on_jwks_unavailable: {policy}")))
        wait_status(gw, a.token(), 200)
        js.mode = "garbage"
        # An unknown kid makes it refresh now; the refresh fails.
        requests.get(gw.url("/x"), headers=bearer(a.token(headers={"kid": "zzz"})))
        assert requests.get(gw.url("/x"), headers=bearer(a.token(claims(sub="again")))).status_code == expect
        assert requests.get(gw.url("/x"), headers=bearer(a.token())).status_code == expect
        gw.stop()


def test_stalled_key_server_does_not_hang_requests(gateway, upstream, server):
    a = KeyPair("ES256", "a")
    js = server([a])
    up = upstream()
    gw = start(gateway, up, auth_config(url_provider(js.url, "    jwks_timeout: 500ms")))
    wait_status(gw, a.token(), 200)
    js.mode = "stall"
    t0 = time.time()
    r = requests.get(gw.url("/x"), headers=bearer(a.token(headers={"kid": "new"})), timeout=5)
    assert r.status_code == 401 and time.time() - t0 < 2.0
    assert requests.get(gw.url("/x"), headers=bearer(a.token()), timeout=5).status_code == 200


def test_jwks_over_https_with_a_test_ca(gateway, upstream, server, tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    a = KeyPair("PS256", "a")
    js = server([a], tls_cert=cert)
    up = upstream()
    gw = start(gateway, up, auth_config(url_provider(js.url, f"    jwks_ca: {ca_path}")))
    wait_status(gw, a.token(), 200)
    # The same server without the CA: the chain is not trusted, no keys, 503.
    up2 = upstream()
    gw2 = start(gateway, up2, auth_config(url_provider(js.url)))
    time.sleep(1.0)
    assert requests.get(gw2.url("/x"), headers=bearer(a.token())).status_code == 503
    assert "JWKS fetch failed" in gw2.stderr_text()


def test_suspended_request_client_leaves_and_pipelining(gateway, upstream, server):
    """A request waiting for a key refresh holds no reads, keeps pipelined requests in order,
    and a client that leaves meanwhile costs nothing."""
    import socket
    a = KeyPair("ES256", "a")
    js = server([a])
    up = upstream()
    gw = start(gateway, up, auth_config(url_provider(js.url, "    jwks_timeout: 3s")))
    wait_status(gw, a.token(), 200)
    js.mode, js.stall = "stall", 1.0
    # Pipelined: the waiting request is answered first (after the 1 s refresh), then the next.
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    t0 = time.time()
    s.sendall((f"GET /x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {a.token(headers={'kid': 'later'})}\r\n\r\n"
               f"GET /y HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {a.token()}\r\nConnection: close\r\n\r\n").encode())
    data = b""
    while True:
        piece = s.recv(65536)
        if not piece:
            break
        data += piece
    s.close()
    import re
    statuses = [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]
    assert statuses == [401, 200], data[:300]
    assert time.time() - t0 >= 0.9  # it did wait for the refresh
    assert up.last.target == "/y"
    # The client leaves while its request waits for the next refresh (after the 5 s interval).
    time.sleep(5.1)
    s = socket.create_connection(("127.0.0.1", gw.port))
    s.sendall(f"GET /x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {a.token(headers={'kid': 'later3'})}\r\n\r\n".encode())
    time.sleep(0.1)
    s.close()
    assert requests.get(gw.url("/z"), headers=bearer(a.token())).status_code == 200
    time.sleep(1.2)
    assert gw.alive()


def test_key_set_over_1_mib_is_refused(gateway, upstream, server):
    a = KeyPair("ES256", "a")
    js = server([a])
    js.mode = "huge"
    up = upstream()
    gw = start(gateway, up, auth_config(url_provider(js.url)))
    time.sleep(0.5)
    assert requests.get(gw.url("/x"), headers=bearer(a.token())).status_code == 503
    assert "larger than 1048576 bytes" in gw.stderr_text()
    js.mode = "ok"
    wait_status(gw, a.token(), 200, timeout=10)
    age = [l for l in requests.get(gw.admin("/metrics")).text.splitlines()
           if l.startswith('sluice_jwks_keys_age_seconds{provider="jwt"}')]
    assert age and 0 <= float(age[0].split()[-1]) < 60


def test_jwks_file_is_reread_on_reload(gateway, upstream, tmp_path):
    a, b = KeyPair("ES256", "a"), KeyPair("EdDSA", "b")
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [a.jwk]}))
    up = upstream()
    gw = start(gateway, up, auth_config(f"""  jwt:
    type: jwt
    issuer: https://id.test
    audiences: [api]
    jwks_file: {path}
"""))
    assert requests.get(gw.url("/x"), headers=bearer(a.token())).status_code == 200
    assert requests.get(gw.url("/x"), headers=bearer(b.token())).status_code == 401
    path.write_text(json.dumps({"keys": [b.jwk]}))
    assert requests.post(gw.admin("/reload")).status_code == 200
    assert requests.get(gw.url("/x"), headers=bearer(b.token())).status_code == 200
    # The old key left: its cached verdict does not admit any more.
    assert requests.get(gw.url("/x"), headers=bearer(a.token())).status_code == 401
    # A broken file is rejected by the reload and the running keys stay.
    path.write_text("{not json")
    assert requests.post(gw.admin("/reload")).status_code == 400
    assert requests.get(gw.url("/x"), headers=bearer(b.token())).status_code == 200
