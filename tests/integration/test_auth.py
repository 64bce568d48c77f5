"""Authentication at the edge against the running binary: tokens minted by PyJWT for every
algorithm, a real JWKS server, a recording upstream that proves nothing unauthenticated
reached it (SECURITY.md rules 4, 5 and 8)."""
import json
import os
import time
import uuid

import pytest
import requests

from authkit import ASYMMETRIC, SECRET, JWKSServer, KeyPair, claims, mint, unsigned, b64
from conftest import raw, status_of


def auth_config(providers, route_auth="[jwt]", route_extra="", top_extra="", listener_extra=""):
    return f"""
version: 1
admin: {{ listen: 127.0.0.1:{{{{ADMIN_PORT}}}} }}
observability:
  access_log: {{ format: json, output: stdout }}
listeners:
  - name: public
    listen: 127.0.0.1:{{{{PORT}}}}
{listener_extra}
    routes:
      - name: open
        match: {{ path_prefix: /open }}
        backend: svc
      - name: api
        match: {{ path_prefix: / }}
        auth: {route_auth}
{route_extra}
        backend: svc
backends:
  svc:
    endpoints: [{{{{UPSTREAM}}}}]
auth:
{providers}
{top_extra}
"""


def start(gateway, up, config, env=None):
    return gateway(config.replace("{{UPSTREAM}}", up.address), env=env)


@pytest.fixture(scope="module")
def keypairs():
    return {alg: KeyPair(alg, f"k-{alg}") for alg in ASYMMETRIC}


@pytest.fixture
def jwks(keypairs):
    servers = []

    def make(keys=None, tls_cert=None):
        s = JWKSServer(keys if keys is not None else list(keypairs.values()), tls_cert=tls_cert)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


JWT_FILE = """  jwt:
    type: jwt
    issuer: https://id.test
    audiences: [api]
    algorithms: [RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA]
    jwks_file: {{DIR}}/jwks.json
    forward_claims: { sub: x-user-id, role: x-role }
"""


@pytest.fixture
def file_gateway(gateway, upstream, keypairs, tmp_path):
    with open(os.path.join(str(tmp_path), "jwks.json"), "w") as f:
        json.dump({"keys": [k.jwk for k in keypairs.values()]}, f)
    up = upstream()
    gw = start(gateway, up, auth_config(JWT_FILE))
    pid = gw.proc.pid
    yield gw, up
    assert gw.alive() and gw.proc.pid == pid


@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_every_asymmetric_algorithm_from_a_jwks_file(file_gateway, keypairs, alg):
    gw, up = file_gateway
    r = requests.get(gw.url("/x"), headers={**bearer(keypairs[alg].token()), "x-user-id": "mallory"})
    assert r.status_code == 200, r.text
    seen = up.last
    assert seen.header("x-user-id") == "alice"  # from the claim, the client's copy removed
    assert seen.header_names().count("x-user-id") == 1
    assert seen.header("x-role") == "admin"
    assert seen.header("authorization") is None  # credential not forwarded by default


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_algorithms_with_a_secret(gateway, upstream, alg):
    up = upstream()
    providers = f"""  jwt:
    type: jwt
    algorithms: [{alg}]
    secret: ${{env:JWT_SECRET}}
"""
    gw = start(gateway, up, auth_config(providers), env={"JWT_SECRET": SECRET})
    assert requests.get(gw.url("/"), headers=bearer(mint(SECRET, alg))).status_code == 200
    other = {"HS256": "HS384", "HS384": "HS512", "HS512": "HS256"}[alg]
    assert requests.get(gw.url("/"), headers=bearer(mint(SECRET, other))).status_code == 401
    assert requests.get(gw.url("/"), headers=bearer(mint(SECRET + "x", alg))).status_code == 401
    cfg = requests.get(gw.admin("/config")).json()
    assert cfg["auth"]["jwt"]["secret"] == "<redacted>"
    assert SECRET not in json.dumps(cfg)


def refused(gw, up, token, expect_invalid=True):
    before = len(up.requests)
    r = requests.get(gw.url("/x"), headers=bearer(token))
    assert r.status_code == 401, (token, r.status_code, r.text)
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["error"] == "unauthenticated" and body["request_id"]
    www = r.headers["www-authenticate"]
    assert www.startswith('Bearer realm="sluice"')
    assert ('error="invalid_token"' in www) == expect_invalid
    assert len(up.requests) == before, "an unauthenticated request reached the upstream"
    return body


def test_no_credentials_gets_bearer_challenge_without_error(file_gateway):
    gw, up = file_gateway
    r = requests.get(gw.url("/x"))
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="sluice"'
    assert len(up.requests) == 0
    assert requests.get(gw.url("/open")).status_code == 200


def test_alg_none_in_any_spelling_is_refused(file_gateway):
    gw, up = file_gateway
    for alg in ["none", "None", "NONE", "nOnE"]:
        refused(gw, up, unsigned(alg=alg))
        refused(gw, up, unsigned(alg=alg, header_extra={"kid": "k-RS256"}))


def test_key_confusion_hs_token_signed_with_the_rsa_public_key(file_gateway, keypairs):
    from cryptography.hazmat.primitives import serialization
    gw, up = file_gateway
    pem = keypairs["RS256"].private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    import hmac, hashlib
    header = b64(json.dumps({"alg": "HS256", "kid": "k-RS256"}).encode())
    body = b64(json.dumps(claims()).encode())
    sig = b64(hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest())
    refused(gw, up, f"{header}.{body}.{sig}")


def test_algorithm_pinned_per_key(file_gateway, keypairs):
    gw, up = file_gateway
    # An RS256 key's kid on a PS256 signature by the same RSA key: the key is pinned to RS256.
    k = keypairs["RS256"]
    refused(gw, up, mint(k.private, "PS256", kid=k.kid))
    # An ES256 token whose header says ES384.
    tok = keypairs["ES256"].token().split(".")
    hdr = b64(json.dumps({"alg": "ES384", "kid": "k-ES256"}).encode())
    refused(gw, up, ".".join([hdr, tok[1], tok[2]]))


def test_crit_header_is_refused(file_gateway, keypairs):
    gw, up = file_gateway
    k = keypairs["ES256"]
    refused(gw, up, k.token(headers={"crit": ["exp"], "exp": 1}))


def test_ecdsa_zero_signature_is_refused(file_gateway, keypairs):
    gw, up = file_gateway
    for alg, size in [("ES256", 32), ("ES384", 48)]:
        tok = keypairs[alg].token().split(".")
        refused(gw, up, ".".join([tok[0], tok[1], b64(b"\x00" * (2 * size))]))
        # r = n (out of range)
        n256 = bytes.fromhex("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551")
        if alg == "ES256":
            refused(gw, up, ".".join([tok[0], tok[1], b64(n256 + b"\x01" * 32)]))


@pytest.mark.parametrize("body,why", [
    (claims(exp=int(time.time()) - 120), "expired"),
    (claims(nbf=int(time.time()) + 600), "not yet valid"),
    (claims(iat=int(time.time()) + 600), "issued in the future"),
    (claims(iss="https://evil.test"), "wrong issuer"),
    (claims(iss=None), "no issuer"),
    (claims(aud="other"), "wrong audience"),
    (claims(aud=["x", "y"]), "wrong audiences"),
    (claims(exp=str(int(time.time()) + 300)), "string exp"),
    (claims(nbf="0"), "string nbf"),
    (claims(aud=5), "number aud"),
    (claims(sub=5), "number sub"),
])
def test_registered_claims(file_gateway, keypairs, body, why):
    gw, up = file_gateway
    refused(gw, up, keypairs["ES256"].token(body))


def test_clock_skew_admits_a_just_expired_token(file_gateway, keypairs):
    gw, up = file_gateway
    tok = keypairs["ES256"].token(claims(exp=int(time.time()) - 10))  # default skew 60s
    assert requests.get(gw.url("/x"), headers=bearer(tok)).status_code == 200
    tok = keypairs["ES256"].token(claims(aud=["other", "api"]))
    assert requests.get(gw.url("/x"), headers=bearer(tok)).status_code == 200


def test_malformed_tokens_never_crash(file_gateway, keypairs):
    gw, up = file_gateway
    good = keypairs["RS256"].token()
    h, p, s = good.split(".")
    deep = b64(("[" * 5000 + "]" * 5000).encode())
    cases = [
        "x", "a.b", "a.b.c.d", "..", h + "." + p, h + "." + p + ".", "!!!." + p + "." + s,
        h + ".%%%." + s, b64(b"not json") + "." + p + "." + s, b64(b"[1,2]") + "." + p + "." + s,
        h + "." + b64(b"\xff\xfe\x00") + "." + s, h + "." + deep + "." + s, b64(b'{"alg":"RS256","alg":"none"}') + "." + p + "." + s,
        h + "=." + p + "." + s, good + "A", "a" * 9000, h + "." + b64(b'"just a string"') + "." + s,
        h + "." + p + "." + s[:-4],
    ]
    for tok in cases:
        refused(gw, up, tok)
    # Not a bearer token at all: the scheme is wrong → no credential, no invalid_token.
    r = requests.get(gw.url("/x"), headers={"Authorization": "Basic YWxhZGRpbjpvcGVuc2VzYW1l"})
    assert r.status_code == 401 and "invalid_token" not in r.headers["www-authenticate"]
    # Lower-case scheme and several spaces (RFC 6750 1*SP) are accepted.
    assert requests.get(gw.url("/x"), headers={"Authorization": "bearer   " + good}).status_code == 200
    assert requests.get(gw.url("/x"), headers={"Authorization": "BEARER " + good}).status_code == 200


def test_huge_token_is_refused_before_decoding(file_gateway):
    gw, up = file_gateway
    r = requests.get(gw.url("/x"), headers=bearer("e" * 8193 + ".a.b"))
    assert r.status_code == 401
    assert "too large" in r.json()["message"]


def test_user_in_access_log_and_no_token_anywhere(file_gateway, keypairs):
    gw, up = file_gateway
    tok = keypairs["EdDSA"].token(claims(sub="bob"))
    assert requests.get(gw.url("/logged"), headers=bearer(tok)).status_code == 200
    requests.get(gw.url("/logged"), headers=bearer(tok[:-3] + "AAA"))
    time.sleep(0.3)
    lines = [json.loads(l) for l in gw.stdout_text().splitlines() if l.startswith("{")]
    # Each event loop flushes its own lines: order across connections is not kept.
    mine = sorted([l for l in lines if l["path"] == "/logged"], key=lambda l: l["status"])
    assert mine[0]["user"] == "bob" and mine[0]["status"] == 200
    assert mine[1]["status"] == 401 and mine[1]["user"] is None and mine[1]["error"] == "unauthenticated"
    everything = gw.stdout_text() + gw.stderr_text() + requests.get(gw.admin("/metrics")).text
    everything += requests.get(gw.admin("/config")).text
    assert tok.split(".")[2][:20] not in everything and tok.split(".")[1][:20] not in everything


def test_failure_metrics(file_gateway, keypairs):
    gw, up = file_gateway
    requests.get(gw.url("/x"))
    requests.get(gw.url("/x"), headers=bearer(keypairs["ES256"].token(claims(exp=1))))
    text = requests.get(gw.admin("/metrics")).text
    assert 'sluice_auth_failures_total{route="api",provider="jwt",reason="missing"} 1' in text
    assert 'sluice_auth_failures_total{route="api",provider="jwt",reason="expired"} 1' in text
