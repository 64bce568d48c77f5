"""Token sources, credential forwarding, API keys, several providers, policies, CORS and audit
webhooks against the running binary, with a recording upstream."""
import json
import socket
import time

import pytest
import requests

from authkit import SECRET, KeyPair, WebhookReceiver, claims, mint
from conftest import raw, status_of
from test_auth import auth_config, bearer, start

HS = """  jwt:
    type: jwt
    algorithms: [HS256]
    secret: ${env:JWT_SECRET}
    token_from: ["header:Authorization", "query:access_token", "cookie:session"]
    forward_claims: { sub: x-user-id, tenant: x-tenant-id, groups: x-groups, n: x-n }
"""
KEYS = """  partner:
    type: api_key
    header: x-api-key
    keys: { partner-a: ${env:KEY_A}, partner-b: ${file:{{DIR}}/key-b} }
  querykey:
    type: api_key
    query: api_key
    keys: { q-user: "query-key-0123456789" }
"""
ENV = {"JWT_SECRET": SECRET, "KEY_A": "key-a-0123456789abcdef"}


def config(route_extra="", top_extra="", route_auth="[jwt]", providers=HS):
    return auth_config(providers, route_auth=route_auth, route_extra=route_extra, top_extra=top_extra,
                       listener_extra="    trusted_proxies: [127.0.0.0/8]")


def hs(**extra):
    return mint(SECRET, "HS256", body=claims(**extra))


@pytest.fixture
def keyfile(tmp_path):
    (tmp_path / "key-b").write_text("key-b-0123456789abcdef\n")


def test_token_from_query_and_cookie_and_forwarding(gateway, upstream):
    up = upstream()
    gw = start(gateway, up, config(), env=ENV)
    tok = hs(tenant="t1", n=42, groups=["a", "b"])
    assert requests.get(gw.url("/q?x=1&access_token=" + tok + "&y=2")).status_code == 200
    assert up.last.target == "/q?x=1&y=2"  # the query credential is not forwarded
    assert up.last.header("x-tenant-id") == "t1" and up.last.header("x-n") == "42"
    assert up.last.header("x-groups") is None  # lists are not forwarded as headers
    assert requests.get(gw.url("/c"), cookies={"session": tok, "other": "1"}).status_code == 200
    # First present source wins: a bad header token is not rescued by a good cookie.
    r = requests.get(gw.url("/c"), headers=bearer("bad.bad.bad"), cookies={"session": tok})
    assert r.status_code == 401
    # Claim headers sent by the client are removed, token or not.
    requests.get(gw.url("/open"), headers={"x-user-id": "root", "X-Tenant-Id": "evil"})
    assert up.last.header("x-user-id") is None and up.last.header("x-tenant-id") is None
    # ...and `Connection: x-user-id` cannot delete the gateway's own copy.
    requests.get(gw.url("/q"), headers={**bearer(tok), "Connection": "x-user-id", "x-user-id": "root"})
    assert up.last.header("x-user-id") == "alice"


def test_forward_token_true_keeps_the_credential(gateway, upstream):
    up = upstream()
    gw = start(gateway, up, config(providers=HS + "    forward_token: true\n"), env=ENV)
    tok = hs()
    requests.get(gw.url("/"), headers=bearer(tok))
    assert up.last.header("authorization") == "Bearer " + tok
    requests.get(gw.url("/q?access_token=" + tok))
    assert "access_token=" in up.last.target


def test_api_keys_header_query_and_env_file(gateway, upstream, keyfile):
    up = upstream()
    gw = start(gateway, up, config(route_auth="[partner, querykey]", providers=KEYS), env=ENV)
    assert requests.get(gw.url("/a"), headers={"x-api-key": "key-a-0123456789abcdef"}).status_code == 200
    assert up.last.header("x-api-key") is None
    assert requests.get(gw.url("/b"), headers={"x-api-key": "key-b-0123456789abcdef"}).status_code == 200
    assert requests.get(gw.url("/q?api_key=query-key-0123456789")).status_code == 200
    assert up.last.target == "/q"
    n = len(up.requests)
    for bad in ["key-a-0123456789abcdeX", "", "key-a", "x" * 5000]:
        r = requests.get(gw.url("/a"), headers={"x-api-key": bad})
        assert r.status_code == 401, bad
    assert requests.get(gw.url("/a")).status_code == 401
    assert len(up.requests) == n
    time.sleep(0.3)
    users = {json.loads(l)["user"] for l in gw.stdout_text().splitlines() if l.startswith("{")}
    assert {"partner-a", "partner-b", "q-user"} <= users
    cfg = requests.get(gw.admin("/config")).text
    assert "key-a-0123" not in cfg and "key-b-0123" not in cfg and "query-key" not in cfg
    assert '"partner-a": "<redacted>"' in cfg


def test_any_provider_admits_and_401_reflects_first_that_saw_a_credential(gateway, upstream, keyfile):
    up = upstream()
    gw = start(gateway, up, config(route_auth="[jwt, partner]", providers=HS + KEYS), env=ENV)
    assert requests.get(gw.url("/"), headers=bearer(hs())).status_code == 200
    assert requests.get(gw.url("/"), headers={"x-api-key": "key-a-0123456789abcdef"}).status_code == 200
    # A wrong API key and no token: the API key provider saw a credential → its failure.
    r = requests.get(gw.url("/"), headers={"x-api-key": "wrong-wrong-wrong-wrong"})
    assert r.status_code == 401 and "API key" in r.json()["message"]
    metrics = requests.get(gw.admin("/metrics")).text
    assert 'sluice_auth_failures_total{route="api",provider="partner",reason="invalid_key"} 1' in metrics
    # A bad token and a good key: admitted by the key.
    assert requests.get(gw.url("/"), headers={**bearer("x.y.z"), "x-api-key": "key-a-0123456789abcdef"}).status_code == 200


POLICIES = """
policies:
  admins:
    allow:
      - { claims: { role: admin } }
      - { claims: { groups: [ops, sre] }, methods: [GET], paths: [/reports] }
      - { source_ip: [10.9.0.0/16], methods: [GET] }
"""


def test_policies(gateway, upstream):
    up = upstream()
    gw = start(gateway, up, config(route_extra="        authorize: admins", top_extra=POLICIES), env=ENV)
    assert requests.get(gw.url("/any"), headers=bearer(hs(role="admin"))).status_code == 200
    n = len(up.requests)
    r = requests.get(gw.url("/any"), headers=bearer(hs(role="user")))
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert requests.post(gw.url("/reports"), headers=bearer(hs(role="user", groups=["sre"]))).status_code == 403
    assert requests.get(gw.url("/reportsX"), headers=bearer(hs(role="user", groups=["sre"]))).status_code == 403
    assert requests.get(gw.url("/reports/1"), headers=bearer(hs(role="user", groups="dev"))).status_code == 403
    assert len(up.requests) == n, "a denied request reached the upstream"
    assert requests.get(gw.url("/reports/1"), headers=bearer(hs(role="user", groups=["dev", "ops"]))).status_code == 200
    assert requests.get(gw.url("/reports"), headers=bearer(hs(role="user", groups="ops"))).status_code == 200
    # source_ip is the client IP after trusted_proxies: 127.0.0.1 is trusted, so XFF counts.
    t = bearer(hs(role="user"))
    assert requests.get(gw.url("/x"), headers={**t, "x-forwarded-for": "10.9.1.2"}).status_code == 200
    assert requests.get(gw.url("/x"), headers={**t, "x-forwarded-for": "10.9.1.2, 192.0.2.1"}).status_code == 403
    # The canonical path is what policies see: dot segments cannot dodge a path rule.
    assert requests.get(gw.url("/x/../reports/1"), headers=bearer(hs(role="user", groups="ops"))).status_code == 200


CORS = """        cors:
          allow_origins: ["https://app.example.com", "https://*.example.org"]
          allow_methods: [GET, POST, PUT]
          allow_headers: [content-type, authorization]
          expose_headers: [x-total]
          allow_credentials: true
          max_age: 10m"""


def test_cors_preflight_and_actual_responses(gateway, upstream):
    up = upstream(lambda req: (200, [("content-type", "text/plain"), ("access-control-allow-origin", "*")], b"ok"))
    gw = start(gateway, up, config(route_extra=CORS), env=ENV)
    pre = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT",
           "Access-Control-Request-Headers": "content-type, authorization"}
    r = requests.options(gw.url("/items"), headers=pre)  # no credentials on a preflight
    assert r.status_code == 204, r.text
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "PUT" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-allow-credentials"] == "true"
    assert r.headers["access-control-max-age"] == "600"
    assert "content-length" not in r.headers
    assert len(up.requests) == 0, "a preflight was forwarded"
    r = requests.options(gw.url("/items"), headers={**pre, "Origin": "https://a.b.example.org"})
    assert r.headers["access-control-allow-origin"] == "https://a.b.example.org"
    for origin in ["https://evil.com", "https://example.org", "http://app.example.com", "https://app.example.com.evil.com",
                   "null"]:
        r = requests.options(gw.url("/items"), headers={**pre, "Origin": origin})
        assert r.status_code == 204 and "access-control-allow-origin" not in r.headers, origin
    r = requests.options(gw.url("/items"), headers={**pre, "Access-Control-Request-Headers": "x-secret"})
    assert "access-control-allow-origin" not in r.headers
    assert len(up.requests) == 0
    # Actual requests: allowed origin echoed (never the upstream's "*"), Vary: Origin.
    r = requests.get(gw.url("/items"), headers={**bearer(hs()), "Origin": "https://app.example.com"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    assert r.headers["access-control-expose-headers"] == "x-total"
    assert "Origin" in r.headers["vary"]
    r = requests.get(gw.url("/items"), headers={**bearer(hs()), "Origin": "https://evil.com"})
    assert "access-control-allow-origin" not in r.headers
    # The gateway's own 401 carries CORS headers, so the browser app can read it.
    r = requests.get(gw.url("/items"), headers={"Origin": "https://app.example.com"})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == "https://app.example.com"
    # A plain OPTIONS (not a preflight) still needs credentials.
    assert requests.options(gw.url("/items")).status_code == 401


def test_audit_webhook_events(gateway, upstream):
    sink = WebhookReceiver()
    try:
        top = POLICIES + f"""
audit:
  sinks:
    - type: webhook
      url: {sink.url}
      events: [auth_denied, policy_denied, config_reloaded]
"""
        up = upstream()
        gw = start(gateway, up, config(route_extra="        authorize: admins", top_extra=top), env=ENV)
        bad = hs(role="user")
        requests.get(gw.url("/x"), headers={"x-forwarded-for": "203.0.113.7"})
        requests.get(gw.url("/x"), headers=bearer(bad))
        denied = sink.wait_for("auth_denied")
        assert denied and denied[0]["route"] == "api" and denied[0]["detail"] == {"provider": "jwt", "reason": "missing"}
        assert denied[0]["client_ip"] == "203.0.113.7" and denied[0]["request_id"] and denied[0]["time"].endswith("Z")
        pol = sink.wait_for("policy_denied")
        assert pol and pol[0]["user"] == "alice" and pol[0]["detail"] == {"policy": "admins"}
        assert requests.post(gw.admin("/reload")).status_code == 200
        assert sink.wait_for("config_reloaded")
        assert bad.split(".")[2] not in json.dumps(sink.events())
    finally:
        sink.close()


def test_dead_or_slow_sink_never_slows_requests(gateway, upstream):
    sink = WebhookReceiver()
    sink.mode = "stall"
    dead_port = sink.port
    try:
        top = f"""
audit:
  sinks:
    - {{ type: webhook, name: slow, url: {sink.url}, queue: 5, timeout: 200ms, retries: 0 }}
    - {{ type: webhook, name: dead, url: "http://127.0.0.1:1/audit", queue: 5, batch: 10, retries: 1 }}
"""
        up = upstream()
        gw = start(gateway, up, config(top_extra=top), env=ENV)
        s = requests.Session()
        t0 = time.time()
        for _ in range(200):
            assert s.get(gw.url("/x")).status_code == 401
        assert time.time() - t0 < 5
        time.sleep(0.5)
        metrics = requests.get(gw.admin("/metrics")).text
        dropped = {l.split("{")[1].split("}")[0]: float(l.split()[-1]) for l in metrics.splitlines()
                   if l.startswith("sluice_audit_events_dropped_total")}
        assert dropped['sink="slow"'] > 150 and dropped['sink="dead"'] > 150, dropped
        assert gw.rss_kib() < 60_000
    finally:
        sink.close()


def test_audit_batches_are_json_arrays(gateway, upstream):
    sink = WebhookReceiver()
    try:
        top = f"""
audit:
  sinks:
    - {{ type: webhook, url: {sink.url}, events: [auth_denied], batch: 50 }}
"""
        up = upstream()
        gw = start(gateway, up, config(top_extra=top), env=ENV)
        s = requests.Session()
        for _ in range(120):
            s.get(gw.url("/x"))
        deadline = time.time() + 5
        while time.time() < deadline and len(sink.events()) < 120:
            time.sleep(0.05)
        assert len(sink.events()) == 120
        assert all(isinstance(b, list) and 1 <= len(b) <= 50 for b in sink.bodies)
        assert len(sink.bodies) < 120  # batched, not one POST per event
        assert {e["event"] for e in sink.events()} == {"auth_denied"}
    finally:
        sink.close()
