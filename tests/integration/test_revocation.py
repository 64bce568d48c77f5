"""The JWT revocation deny-list in a real Redis: a revoked `jti` is refused on every request,
cached tokens included; a store that cannot answer refuses (503) unless told to allow."""
import time
import uuid

import requests

from authkit import SECRET, claims, mint
from rediskit import RedisServer
from test_rate_limit import metric, wait_until


def revocation_config(up, store_url, on_error=None):
    extra = f", on_store_error: {on_error}" if on_error else ""
    return f"""
version: 1
admin: {{ listen: 127.0.0.1:{{{{ADMIN_PORT}}}} }}
listeners:
  - name: public
    listen: 127.0.0.1:{{{{PORT}}}}
    routes:
      - name: api
        auth: [jwt]
        backend: svc
backends:
  svc: {{ endpoints: [{up.address}] }}
auth:
  jwt:
    type: jwt
    secret: "{SECRET}"
    issuer: https://id.test
    audiences: [api]
    revocation: {{ store: main, key_prefix: "test:revoked:"{extra} }}
stores:
  main: {{ type: redis, url: "{store_url}", timeout: 50ms }}
"""


def token(jti):
    body = claims(jti=jti) if jti else claims()
    return {"Authorization": "Bearer " + mint(SECRET, "HS256", body=body)}


def test_revoked_jti_is_refused_even_from_the_cache(gateway, upstream):
    rs = RedisServer()
    try:
        up = upstream()
        gw = gateway(revocation_config(up, rs.url))
        assert wait_until(lambda: metric(gw, "sluice_store_connections", store="main") >= 1)
        jti = str(uuid.uuid4())
        h = token(jti)
        assert requests.get(gw.url("/"), headers=h).status_code == 200  # verified and cached
        rs.client().set("test:revoked:" + jti, "1", ex=600)
        r = requests.get(gw.url("/"), headers=h)
        assert r.status_code == 401
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
        assert "revoked" in r.json()["message"]
        assert metric(gw, "sluice_auth_failures_total", route="api", provider="jwt", reason="revoked") == 1
        # Other tokens, and tokens without a jti, still pass.
        assert requests.get(gw.url("/"), headers=token(str(uuid.uuid4()))).status_code == 200
        assert requests.get(gw.url("/"), headers=token(None)).status_code == 200
        assert len(up.requests) == 3
        # Un-revoked: admitted again.
        rs.client().delete("test:revoked:" + jti)
        assert requests.get(gw.url("/"), headers=h).status_code == 200
    finally:
        rs.close()


def test_store_down_refuses_by_default_and_allows_when_configured(gateway, upstream):
    rs = RedisServer()
    try:
        up = upstream()
        strict = gateway(revocation_config(up, rs.url))
        lenient = gateway(revocation_config(up, rs.url, on_error="allow"))
        for gw in (strict, lenient):
            assert wait_until(lambda: metric(gw, "sluice_store_connections", store="main") >= 1)
        rs.stop()
        for gw in (strict, lenient):
            assert wait_until(lambda: metric(gw, "sluice_store_connections", store="main") == 0)
        h = token(str(uuid.uuid4()))
        t0 = time.time()
        r = requests.get(strict.url("/"), headers=h)
        assert r.status_code == 503 and r.json()["error"] == "unavailable"
        assert requests.get(lenient.url("/"), headers=h).status_code == 200
        assert time.time() - t0 < 1.0
        assert metric(strict, "sluice_store_fallbacks_total", store="main", error="disconnected", decision="deny") == 1
    finally:
        rs.close()
