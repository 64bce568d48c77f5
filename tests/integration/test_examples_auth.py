"""The auth examples, run as written (ports and addresses swapped for free ones)."""
import json
import os

import pytest
import requests

from authkit import JWKSServer, KeyPair, claims
from conftest import ROOT


def load(name, up, extra=None):
    text = open(os.path.join(ROOT, "examples", name)).read()
    text = text.replace("127.0.0.1:8080", "127.0.0.1:{{PORT}}").replace("127.0.0.1:9000", up.address)
    text = text.replace("version: 1\n", "version: 1\nadmin: { listen: 127.0.0.1:{{ADMIN_PORT}} }\n", 1)
    for a, b in (extra or {}).items():
        text = text.replace(a, b)
    return text


def test_jwt_jwks_example(gateway, upstream):
    key = KeyPair("ES256", "k1")
    js = JWKSServer([key])
    try:
        up = upstream()
        gw = gateway(load("jwt-jwks.yaml", up, {"http://127.0.0.1:8081/.well-known/jwks.json": js.url}))
        body = claims(iss="https://id.example.com", tenant="t9", role="user", groups=["ops"])
        tok = key.token(body)
        assert requests.get(gw.url("/health")).status_code == 200
        r = requests.get(gw.url("/api/items"), headers={"Authorization": "Bearer " + tok})
        assert r.status_code == 200 and up.last.header("x-tenant-id") == "t9"
        assert requests.get(gw.url("/api/items"), cookies={"session": tok}).status_code == 200
        assert requests.get(gw.url("/api/admin/x"), headers={"Authorization": "Bearer " + tok}).status_code == 200
        assert requests.delete(gw.url("/api/admin/x"), headers={"Authorization": "Bearer " + tok}).status_code == 403
        assert requests.get(gw.url("/api/items")).status_code == 401
    finally:
        js.close()


def test_api_keys_example(gateway, upstream):
    up = upstream()
    gw = gateway(load("api-keys.yaml", up),
                 env={"PARTNER_A_KEY": "partner-a-0123456789", "PARTNER_B_KEY": "partner-b-0123456789"})
    assert requests.get(gw.url("/partners/orders"), headers={"x-api-key": "partner-b-0123456789"}).status_code == 200
    assert up.last.target == "/orders" and up.last.header("x-api-key") is None
    assert requests.get(gw.url("/partners/orders"), headers={"x-api-key": "nope-nope-nope-nope"}).status_code == 401


def test_cors_example(gateway, upstream):
    up = upstream()
    gw = gateway(load("cors.yaml", up))
    r = requests.options(gw.url("/api/x"), headers={"Origin": "https://pr-12.preview.example.com",
                                                    "Access-Control-Request-Method": "DELETE"})
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "https://pr-12.preview.example.com"
    assert len(up.requests) == 0
    r = requests.get(gw.url("/api/x"), headers={"Origin": "https://app.example.com"})
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    assert r.headers["access-control-expose-headers"] == "x-request-id"


def test_routes_explain_shows_the_admission_list():
    import subprocess
    from conftest import BIN
    out = subprocess.run([BIN, "routes", "--config", os.path.join(ROOT, "examples", "jwt-jwks.yaml"), "GET",
                          "http://x/api/admin/1"], capture_output=True, text=True).stdout
    assert "admission: auth: any of idp → authorize: admins-only" in out


def test_full_auth_fixture_config_is_redacted(gateway, tmp_path):
    import shutil
    shutil.copytree(os.path.join(ROOT, "Fixtures", "valid", "keys"), tmp_path / "keys")
    text = open(os.path.join(ROOT, "Fixtures", "valid", "auth.yaml")).read()
    text = text.replace("127.0.0.1:8080", "127.0.0.1:{{PORT}}").replace(
        "version: 1\n", "version: 1\nadmin: { listen: 127.0.0.1:{{ADMIN_PORT}} }\n", 1)
    text = text.replace("https://id.example.com/.well-known/jwks.json", "http://127.0.0.1:1/jwks.json")
    gw = gateway(text)
    cfg = requests.get(gw.admin("/config")).text
    for secret in ["fixture-secret", "partner-a-0123", "partner-b-0123", "token=abc"]:
        assert secret not in cfg, secret
    j = json.loads(cfg)
    assert j["auth"]["local-hs"]["secret"] == "<redacted>"
    assert j["auth"]["idp"]["kids"] == ["es-1", "rs-1", "ed-1"]
    assert j["audit"]["sinks"][0]["url"].endswith("?<redacted>")
    assert j["listeners"][0]["routes"][0]["cors"]["allow_credentials"] is True


def test_rate_limit_local_example(gateway, upstream):
    up = upstream()
    gw = gateway(load("rate-limit-local.yaml", up))
    codes = [requests.get(gw.url("/api/x"), headers={"x-partner": "p1"}).status_code for _ in range(12)]
    assert codes[:10] == [200] * 10 and codes[10:] == [429, 429]
    r = requests.get(gw.url("/api/x"), headers={"x-partner": "p1"})
    assert r.headers["ratelimit-limit"] == "10"
    # Another partner has its own allowance, up to the client IP's burst of 20.
    assert [requests.get(gw.url("/api/x"), headers={"x-partner": "p2"}).status_code for _ in range(11)].count(200) == 10


def test_rate_limit_redis_example(gateway, upstream):
    from authkit import SECRET, mint
    from rediskit import RedisServer
    from test_rate_limit import metric, wait_until

    rs = RedisServer()
    try:
        up = upstream()
        gw = gateway(load("rate-limit-redis.yaml", up, {"redis://127.0.0.1:6379/0": rs.url, "limit: 1000": "limit: 3"}),
                     env={"JWT_SECRET": SECRET})
        assert wait_until(lambda: metric(gw, "sluice_store_connections", store="main") >= 1)
        tok = lambda tenant, jti: {"Authorization": "Bearer " + mint(
            SECRET, "HS256", body=claims(iss="https://id.example.com", tenant=tenant, jti=jti))}
        assert [requests.get(gw.url("/api/x"), headers=tok("t1", f"j{i}")).status_code for i in range(4)] == [200] * 3 + [429]
        assert requests.get(gw.url("/api/x"), headers=tok("t2", "k1")).status_code == 200
        assert rs.client().pttl("sluice:rl:per-tenant:3:t1") > 0
        rs.client().set("sluice:revoked:k2", "1")
        assert requests.get(gw.url("/api/x"), headers=tok("t2", "k2")).status_code == 401
    finally:
        rs.close()
