"""TLS at the edge (https listeners), to upstreams (backend tls) and passthrough by SNI, with
real clients: Python ssl, curl and openssl s_client, against a test CA made by trustme."""
import os
import socket
import ssl
import subprocess
import time

import pytest
import requests

from conftest import BIN, free_port
from test_rate_limit import metric, wait_until
from tlskit import Certs, TLSServer, https_reply, tls_get


@pytest.fixture
def certs(tmp_path):
    return Certs(tmp_path)


def https_config(routes='      - { name: echo, direct_response: { echo: true } }', tls_extra=""):
    return f"""version: 1
admin: {{ listen: 127.0.0.1:{{{{ADMIN_PORT}}}} }}
listeners:
  - name: web
    listen: 127.0.0.1:{{{{PORT}}}}
    protocol: https
    tls:
      certificates:
        - {{ cert: api.pem, key: api.key }}
        - {{ cert: other.pem, key: other.key, server_names: [other.org, "*.other.org"] }}
{tls_extra}
    routes:
{routes}
"""


def names(cert):
    return sorted(v for k, v in cert.get("subjectAltName", ()) if k == "DNS")


def test_https_picks_certificate_by_server_name_with_a_default(gateway, certs):
    certs.write("api", "api.example.com", "*.example.com")
    certs.write("other", "other.org")
    gw = gateway(https_config())
    ctx = certs.client_context()
    status, _, body, facts = tls_get(gw.port, "api.example.com", ctx, "/hello")
    assert status.startswith("HTTP/1.1 200") and b'"path":"/hello"' in body
    assert names(facts["cert"]) == ["*.example.com", "api.example.com"]
    assert facts["version"] == "TLSv1.3"
    # a wildcard name, matched case-insensitively
    assert names(tls_get(gw.port, "Shop.Example.COM", ctx)[3]["cert"]) == ["*.example.com", "api.example.com"]
    assert names(tls_get(gw.port, "other.org", ctx)[3]["cert"]) == ["other.org"]
    # an unknown name and no name at all get the first certificate (the default)
    loose = certs.client_context(check_hostname=False)
    assert names(tls_get(gw.port, "unknown.net", loose)[3]["cert"]) == ["*.example.com", "api.example.com"]
    assert names(tls_get(gw.port, None, loose)[3]["cert"]) == ["*.example.com", "api.example.com"]
    # a verifying client refuses the default certificate for a name it does not hold
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_get(gw.port, "unknown.net", ctx)
    # curl, the way a user checks it
    out = subprocess.run(["curl", "-sS", "--cacert", certs.ca_path, "--resolve", f"other.org:{gw.port}:127.0.0.1",
                          f"https://other.org:{gw.port}/c"], capture_output=True, text=True, timeout=10)
    assert '"path":"/c"' in out.stdout, out.stderr
    assert gw.alive()


def test_https_forwards_proto_https_logs_tls_and_routes_on_server_name(gateway, upstream, certs):
    certs.write("api", "api.example.com")
    certs.write("other", "other.org")
    up = upstream()
    routes = f"""      - {{ name: other, match: {{ server_name: other.org }}, direct_response: {{ status: 200, body: "other site" }} }}
      - {{ name: api, backend: api }}
backends:
  api: {{ endpoints: [{up.address}] }}"""
    gw = gateway(https_config(routes))
    ctx = certs.client_context()
    status, _, body, _ = tls_get(gw.port, "api.example.com", ctx, "/x")
    assert status.startswith("HTTP/1.1 200") and body == b"upstream ok"
    assert up.last.header("x-forwarded-proto") == "https"
    # the Host header says api.example.com, but the TLS name routes
    assert tls_get(gw.port, "other.org", ctx, host="api.example.com")[2] == b"other site"
    wait_until(lambda: '"route":"other"' in gw.stdout_text(), timeout=3)
    lines = [line for line in gw.stdout_text().splitlines() if '"request_id"' in line]
    assert any('"protocol":"HTTP/1.1+TLSv1.3"' in line and '"server_name":"api.example.com"' in line for line in lines)
    assert any('"route":"other"' in line and '"server_name":"other.org"' in line for line in lines)


def openssl_client(port, *args, data=b""):
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                          input=data, capture_output=True, timeout=10)


def test_tls_versions_alpn_and_min_version(gateway, certs):
    certs.write("api", "api.example.com")
    certs.write("other", "other.org")
    gw = gateway(https_config())
    ok = openssl_client(gw.port, "-servername", "api.example.com", "-alpn", "h2,http/1.1", "-tls1_2")
    out = ok.stdout.decode()
    assert "Protocol  : TLSv1.2" in out or "TLSv1.2" in out
    assert "ALPN protocol: http/1.1" in out  # h2 is not offered until Sluice speaks it
    # TLS 1.2 suites are forward-secret AEAD only: a CBC suite is refused
    assert b"ECDHE-ECDSA-AES128-GCM-SHA256" in openssl_client(
        gw.port, "-servername", "api.example.com", "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256").stdout
    cbc = openssl_client(gw.port, "-servername", "api.example.com", "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA")
    assert b"alert handshake failure" in cbc.stderr and b"Cipher is (NONE)" in cbc.stdout
    refused = openssl_client(gw.port, "-servername", "api.example.com", "-tls1_1")
    assert b"alert protocol version" in refused.stderr or b"no protocols available" in refused.stderr
    gw13 = gateway(https_config(tls_extra="      min_version: \"1.3\""))
    refused12 = openssl_client(gw13.port, "-servername", "api.example.com", "-tls1_2")
    assert b"alert protocol version" in refused12.stderr
    assert b"TLSv1.3" in openssl_client(gw13.port, "-servername", "api.example.com").stdout


def test_sessions_resume_on_tls12_and_tls13(gateway, certs):
    certs.write("api", "api.example.com")
    certs.write("other", "other.org")
    gw = gateway(https_config())
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = certs.client_context(maximum_version=version)
        first = tls_get(gw.port, "api.example.com", ctx)[3]
        assert not first["reused"]
        second = tls_get(gw.port, "api.example.com", ctx, session=first["session"])[3]
        assert second["reused"], version


def test_handshake_timeout_and_plain_http_on_the_tls_port(gateway, certs):
    certs.write("api", "api.example.com")
    certs.write("other", "other.org")
    gw = gateway(https_config(tls_extra="      handshake_timeout: 300ms"))
    for first in (b"", b"\x16\x03\x01\x02\x00\x01"):  # nothing, then half a ClientHello
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
        if first:
            s.sendall(first)
        started = time.time()
        assert s.recv(100) == b""
        assert time.time() - started < 2.5
        s.close()
    answer = requests.get(f"http://127.0.0.1:{gw.port}/", timeout=5)
    assert answer.status_code == 400 and "plain HTTP request sent to an HTTPS port" in answer.json()["message"]
    assert gw.alive()


def validate(path):
    return subprocess.run([BIN, "validate", "--config", path], capture_output=True, text=True, timeout=20)


def test_validate_reports_certificate_problems_at_their_lines(tmp_path, certs):
    certs.write("api", "api.example.com")
    certs.write("other", "other.org")
    certs.expired("old", "old.example.com")
    config = tmp_path / "sluice.yaml"
    config.write_text(f"""version: 1
listeners:
  - name: web
    listen: 127.0.0.1:{free_port()}
    protocol: https
    tls:
      certificates:
        - {{ cert: missing.pem, key: api.key }}
        - {{ cert: api.pem, key: other.key }}
        - {{ cert: old.pem, key: old.key }}
    routes:
      - {{ name: r, direct_response: {{ status: 200 }} }}
""")
    out = validate(str(config))
    assert out.returncode == 1
    text = out.stdout + out.stderr
    assert "sluice.yaml:8:" in text and "cannot read certificate file 'missing.pem'" in text
    assert "sluice.yaml:9:" in text and "does not match the certificate" in text
    assert "sluice.yaml:10:" in text and "expired on 2020-01-01" in text
    config.write_text(f"""version: 1
listeners:
  - name: web
    listen: 127.0.0.1:{free_port()}
    protocol: https
    routes:
      - {{ name: r, direct_response: {{ status: 200 }} }}
""")
    assert "protocol https needs a 'tls' section" in validate(str(config)).stdout + validate(str(config)).stderr


def test_certificates_reload_when_their_files_change_and_a_bad_one_keeps_the_old(gateway, certs, tmp_path):
    certs.write("api", "api.example.com")
    certs.write("other", "other.org")
    gw = gateway(https_config())
    ctx = certs.client_context()
    first = tls_get(gw.port, "api.example.com", ctx)[3]["cert"]
    # an open keep-alive connection keeps its handshake across the swap
    held = ctx.wrap_socket(socket.create_connection(("127.0.0.1", gw.port), timeout=5), server_hostname="api.example.com")
    certs.write("api", "api.example.com", "new.example.com")
    assert wait_until(lambda: names(tls_get(gw.port, "api.example.com", ctx)[3]["cert"]) == ["api.example.com", "new.example.com"], timeout=6)
    held.sendall(b"GET /held HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n")
    assert b"200" in held.recv(1000)
    held.close()
    failures = metric(gw, "sluice_config_reloads_total", result="failure")
    with open(tmp_path / "api.pem", "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    assert wait_until(lambda: metric(gw, "sluice_config_reloads_total", result="failure") > failures, timeout=6)
    assert names(tls_get(gw.port, "api.example.com", ctx)[3]["cert"]) == ["api.example.com", "new.example.com"]
    assert first != names(tls_get(gw.port, "api.example.com", ctx)[3]["cert"])
    assert "config reload rejected" in gw.stderr_text() or "config reload rejected" in gw.stdout_text()


# ---- upstream TLS ----

def test_upstream_tls_verifies_name_and_chain_and_reuses_connections(gateway, certs, tmp_path):
    cert, key = certs.write("users", "users.internal")
    server = TLSServer(cert, key, https_reply("users"))
    stranger = Certs(tmp_path / "..")  # another CA: its bundle does not trust ours
    try:
        gw = gateway(f"""version: 1
runtime: {{ event_loops: 1 }}
admin: {{ listen: 127.0.0.1:{{{{ADMIN_PORT}}}} }}
listeners:
  - name: web
    listen: 127.0.0.1:{{{{PORT}}}}
    routes:
      - {{ name: good, match: {{ path_prefix: /good }}, backend: good }}
      - {{ name: wrongname, match: {{ path_prefix: /wrongname }}, backend: wrongname }}
      - {{ name: untrusted, match: {{ path_prefix: /untrusted }}, backend: untrusted }}
backends:
  good:
    endpoints: [{server.address}]
    tls: {{ ca: ca.pem, server_name: users.internal }}
    health_check: {{ path: /healthz, interval: 100ms, healthy_threshold: 1, unhealthy_threshold: 1 }}
  wrongname: {{ endpoints: [{server.address}], tls: {{ ca: ca.pem, server_name: orders.internal }} }}
  untrusted: {{ endpoints: [{server.address}], tls: {{ ca: {stranger.ca_path}, server_name: users.internal }} }}
""")
        for _ in range(5):
            r = requests.get(gw.url("/good"), timeout=5)
            assert r.status_code == 200 and r.text == "users\n"
        probes = server.probes
        # health checks speak TLS to a TLS backend: the endpoint stays healthy
        time.sleep(0.5)
        assert server.probes > probes
        backends = requests.get(gw.admin("/backends"), timeout=5).json()["backends"]
        good = [b for b in backends if b["name"] == "good"][0]
        assert good["endpoints"][0]["healthy"] is True
        assert server.pooled_connections == 1  # pooled like plain connections (one event loop)
        r = requests.get(gw.url("/wrongname"), timeout=5)
        assert r.status_code == 502 and r.json()["error"] == "bad_gateway"
        assert "not valid for 'orders.internal'" in r.json()["message"]
        r = requests.get(gw.url("/untrusted"), timeout=5)
        assert r.status_code == 502 and "not trusted" in r.json()["message"]
        logs = gw.stdout_text() + gw.stderr_text()
        assert "upstream TLS handshake failed" in logs and "orders.internal" in logs
    finally:
        server.close()


# ---- passthrough ----

def passthrough_config(routes, backends):
    return f"""version: 1
admin: {{ listen: 127.0.0.1:{{{{ADMIN_PORT}}}} }}
listeners:
  - name: edge
    listen: 127.0.0.1:{{{{PORT}}}}
    protocol: tls_passthrough
    routes:
{routes}
backends:
{backends}
"""


def test_passthrough_routes_by_server_name_to_two_tls_upstreams(gateway, certs):
    a = TLSServer(*certs.write("a", "a.example.com"), https_reply("server-a"))
    b = TLSServer(*certs.write("b", "b.example.com", "*.b.example.com"), https_reply("server-b"))
    try:
        gw = gateway(passthrough_config(
            """      - { name: a, match: { server_name: a.example.com }, backend: a }
      - { name: b, match: { server_name: "*.b.example.com" }, backend: b }""",
            f"""  a: {{ protocol: tcp, endpoints: [{a.address}] }}
  b: {{ protocol: tcp, endpoints: [{b.address}] }}"""))
        ctx = certs.client_context()
        # the client's TLS reaches the upstream itself: it verifies the upstream's certificate
        status, _, body, facts = tls_get(gw.port, "a.example.com", ctx)
        assert body == b"server-a\n" and names(facts["cert"]) == ["a.example.com"]
        assert tls_get(gw.port, "x.b.example.com", certs.client_context(check_hostname=False))[2] == b"server-b\n"
        # no route for the name, and no name: closed without an answer
        for name in ("c.example.com", None):
            with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
                tls_get(gw.port, name, certs.client_context(check_hostname=False))
        # not TLS at all
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert s.recv(100) == b""
        s.close()
        assert metric(gw, "sluice_tcp_connections_total", listener="edge", backend="a", result="spliced") == 1
        assert metric(gw, "sluice_tcp_connections_total", listener="edge", backend="", result="refused") == 3
        assert metric(gw, "sluice_tcp_bytes_total", listener="edge", backend="a", direction="upstream") > 200
        assert metric(gw, "sluice_tcp_bytes_total", listener="edge", backend="a", direction="downstream") > 200
        wait_until(lambda: '"protocol":"TLS"' in gw.stdout_text(), timeout=3)
        assert '"server_name":"a.example.com"' in gw.stdout_text()
    finally:
        a.close()
        b.close()


def test_passthrough_default_route_takes_unknown_and_missing_names_and_a_large_stream(gateway, certs):
    big = b"y" * (4 * 1024 * 1024)
    a = TLSServer(*certs.write("a", "a.example.com"), lambda data: big if data.startswith(b"BIG") else data)
    d = TLSServer(*certs.write("d", "default.example.com"), https_reply("default"))
    try:
        gw = gateway(passthrough_config(
            """      - { name: a, match: { server_name: a.example.com }, backend: a, stream_idle_timeout: 1s }
      - { name: rest, backend: d }""",
            f"""  a: {{ protocol: tcp, endpoints: [{a.address}] }}
  d: {{ protocol: tcp, endpoints: [{d.address}] }}"""))
        loose = certs.client_context(check_hostname=False)
        assert tls_get(gw.port, "zzz.example.com", loose)[2] == b"default\n"
        assert tls_get(gw.port, None, loose)[2] == b"default\n"
        # 4 MiB through the splice, read slowly at first (backpressure), then an echo
        s = certs.client_context().wrap_socket(socket.create_connection(("127.0.0.1", gw.port), timeout=10),
                                               server_hostname="a.example.com")
        s.sendall(b"BIG")
        time.sleep(0.5)
        got = 0
        while got < len(big):
            got += len(s.recv(1 << 20))
        s.sendall(b"echo me")
        assert s.recv(100) == b"echo me"
        # quiet for longer than stream_idle_timeout: both sides are closed
        started = time.time()
        assert s.recv(100) == b""
        assert 0.5 < time.time() - started < 3
        s.close()
        assert gw.alive()
    finally:
        a.close()
        d.close()


# ---- rediss:// ----

def test_rate_limits_share_state_through_redis_over_tls(gateway, upstream, certs, tmp_path):
    from rediskit import RedisServer
    cert, key = certs.write("redis", "localhost", "127.0.0.1")
    server = RedisServer(tls=(cert, key, certs.ca_path))
    stranger = Certs(tmp_path / "..")
    try:
        up = upstream()
        gw = gateway(f"""version: 1
runtime: {{ event_loops: 1 }}
admin: {{ listen: 127.0.0.1:{{{{ADMIN_PORT}}}} }}
listeners:
  - name: web
    listen: 127.0.0.1:{{{{PORT}}}}
    routes:
      - {{ name: shared, match: {{ path_prefix: /shared }}, rate_limit: [shared], backend: svc }}
      - {{ name: wrongca, match: {{ path_prefix: /wrongca }}, rate_limit: [wrongca], backend: svc }}
backends:
  svc: {{ endpoints: [{up.address}] }}
stores:
  redis: {{ type: redis, url: "rediss://localhost:{server.port}/0", tls: {{ ca: ca.pem }}, timeout: 500ms }}
  untrusted: {{ type: redis, url: "rediss://localhost:{server.port}/0", tls: {{ ca: {stranger.ca_path} }}, timeout: 200ms }}
rate_limits:
  shared: {{ key: client_ip, limit: 3, per: 1m, store: redis }}
  wrongca: {{ key: client_ip, limit: 3, per: 1m, store: untrusted, on_store_error: deny }}
""")
        codes = [requests.get(gw.url("/shared"), timeout=5).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        assert any("shared" in k for k in server.client().keys("*"))
        # a store whose certificate is not trusted is a store error: deny (the default), 503
        assert requests.get(gw.url("/wrongca"), timeout=5).status_code == 503
    finally:
        server.close()


def test_upstream_mutual_tls_with_a_client_certificate(gateway, certs):
    cert, key = certs.write("users", "users.internal")
    certs.write("client", "gateway.internal")
    server = TLSServer(cert, key, https_reply("mtls ok"), client_ca=certs.ca_path)
    try:
        gw = gateway(f"""version: 1
admin: {{ listen: 127.0.0.1:{{{{ADMIN_PORT}}}} }}
listeners:
  - name: web
    listen: 127.0.0.1:{{{{PORT}}}}
    routes:
      - {{ name: with, match: {{ path_prefix: /with }}, backend: with }}
      - {{ name: without, backend: without }}
backends:
  with: {{ endpoints: [{server.address}], tls: {{ ca: ca.pem, server_name: users.internal, cert: client.pem, key: client.key }} }}
  without: {{ endpoints: [{server.address}], tls: {{ ca: ca.pem, server_name: users.internal }} }}
""")
        r = requests.get(gw.url("/with"), timeout=5)
        assert r.status_code == 200 and r.text == "mtls ok\n"
        # the upstream refuses a gateway without a client certificate: 502, never plaintext
        r = requests.get(gw.url("/without"), timeout=5)
        assert r.status_code == 502 and r.json()["error"] == "bad_gateway"
    finally:
        server.close()


def test_passthrough_reassembles_a_hello_split_across_segments(gateway):
    """The browser-like hello (GREASE, ECH, a 1.2 KB key share) sent in three TCP segments:
    routed by its name, and the upstream receives exactly the bytes the client sent."""
    import socketserver
    import threading
    hello = bytes.fromhex(open(os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "SluiceFeaturesTests",
                                            "TLS", "hellos", "browser.hex")).read().strip())
    received = []

    class H(socketserver.BaseRequestHandler):
        def handle(self):
            data = b""
            self.request.settimeout(5)
            while len(data) < len(hello):
                piece = self.request.recv(65536)
                if not piece:
                    break
                data += piece
            received.append(data)
            self.request.sendall(b"routed")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), H)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        gw = gateway(passthrough_config(
            """      - { name: www, match: { server_name: www.example.com }, backend: raw }""",
            f"""  raw: {{ protocol: tcp, endpoints: [127.0.0.1:{server.server_address[1]}] }}""").replace(
            "    protocol: tls_passthrough", "    protocol: tls_passthrough\n    limits: { request_header_timeout: 1s }"))
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in (hello[:3], hello[3:700], hello[700:]):
            s.sendall(piece)
            time.sleep(0.1)
        assert s.recv(100) == b"routed"
        assert received == [hello]
        s.close()
        # half a hello, then silence: closed after request_header_timeout (1s)
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
        s.sendall(hello[:600])
        started = time.time()
        assert s.recv(100) == b""
        assert 0.7 < time.time() - started < 3
        s.close()
        assert metric(gw, "sluice_tcp_connections_total", listener="edge", backend="", result="refused") == 1
    finally:
        server.shutdown()
        server.server_close()
