"""Proxying end to end: real binary, real upstreams, real clients."""
import json
import socket
import subprocess
import threading
import time

import requests

from conftest import raw, simple_config, status_of


def test_get_post_and_headers(gateway, upstream):
    up = upstream()
    gw = gateway(simple_config(up.address))
    r = requests.get(gw.url("/hello?x=1"), headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
    assert r.status_code == 200 and r.text == "upstream ok"
    req = up.last
    assert req.method == "GET" and req.target == "/hello?x=1"
    assert req.header("host") == f"127.0.0.1:{gw.port}"
    assert req.header("x-forwarded-for") == "127.0.0.1"
    assert req.header("x-forwarded-proto") == "http"
    assert req.header("x-forwarded-host") == f"127.0.0.1:{gw.port}"
    assert req.header("traceparent").startswith("00-0af7")
    # request id generated, forwarded and returned
    rid = r.headers["x-request-id"]
    assert len(rid) == 32 and req.header("x-request-id") == rid
    # a client's own request id is kept
    r = requests.get(gw.url("/"), headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123" and up.last.header("x-request-id") == "abc-123"
    r = requests.post(gw.url("/submit"), data=b"x" * 1000)
    assert r.status_code == 200
    assert up.last.body == b"x" * 1000 and up.last.header("content-length") == "1000"


def test_chunked_both_ways(gateway, upstream):
    def handler(req):
        return 200, [("transfer-encoding", "chunked")], iter([b"5\r\nhello\r\n", b"6\r\n world\r\n", b"0\r\n\r\n"])

    up = upstream(handler)
    gw = gateway(simple_config(up.address))

    def gen():
        yield b"abc"
        yield b"defg"

    r = requests.post(gw.url("/c"), data=gen())
    assert r.status_code == 200 and r.text == "hello world"
    assert up.last.body == b"abcdefg"
    assert up.last.header("transfer-encoding") == "chunked"
    assert r.headers.get("transfer-encoding") == "chunked"


def test_keep_alive_reuses_upstream_connections(gateway, upstream):
    up = upstream()
    gw = gateway(simple_config(up.address) + "runtime: { event_loops: 1 }\n")
    with requests.Session() as s:
        for _ in range(30):
            assert s.get(gw.url("/k")).status_code == 200
    assert len(up.requests) == 30
    assert up.connections == 1, f"expected the pooled connection to be reused, saw {up.connections}"


def test_hop_by_hop_and_connection_named_headers_removed(gateway, upstream):
    def handler(req):
        return 200, [("connection", "x-secret, keep-alive"), ("x-secret", "s"), ("keep-alive", "timeout=5"),
                     ("proxy-authenticate", "Basic"), ("x-kept", "yes")], b"ok"

    up = upstream(handler)
    gw = gateway(simple_config(up.address))
    request = (b"GET /h HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, x-forwarded-for, x-remove-me, close\r\n"
               b"x-remove-me: 1\r\nKeep-Alive: 300\r\nTE: trailers\r\nUpgrade: websocket\r\nProxy-Authorization: x\r\n"
               b"x-forwarded-for: 6.6.6.6\r\nx-forwarded-proto: https\r\nx-forwarded-host: evil\r\n\r\n")
    answer = raw(gw.port, request)
    assert status_of(answer) == 200
    names = up.last.header_names()
    for name in ["connection", "x-remove-me", "keep-alive", "upgrade", "proxy-authorization"]:
        assert name not in names, name
    assert up.last.header("te") == "trailers"  # SPEC §5: te is dropped except "trailers"
    raw(gw.port, b"GET /h HTTP/1.1\r\nHost: a\r\nTE: gzip\r\nConnection: close\r\n\r\n")
    assert "te" not in up.last.header_names()
    # identity headers are the gateway's: not deleted by Connection, not believed from an untrusted peer
    assert up.last.header("x-forwarded-for") == "127.0.0.1"
    assert up.last.header("x-forwarded-proto") == "http"
    assert up.last.header("x-forwarded-host") == "a"
    head = answer.split(b"\r\n\r\n")[0].decode().lower()
    assert "x-secret" not in head and "keep-alive: timeout" not in head and "proxy-authenticate" not in head
    assert "x-kept: yes" in head
    assert "connection: close" in head  # the client asked for close


def test_trusted_proxy_forwarded_for(gateway, upstream):
    up = upstream()
    gw = gateway(simple_config(up.address, listener_extra="    trusted_proxies: [127.0.0.0/8]"))
    requests.get(gw.url("/"), headers={"x-forwarded-for": "203.0.113.7, 10.0.0.1", "x-forwarded-proto": "https"})
    assert up.last.header("x-forwarded-for") == "203.0.113.7, 10.0.0.1, 127.0.0.1"
    assert up.last.header("x-forwarded-proto") == "https"
    time.sleep(0.3)
    lines = [json.loads(l) for l in gw.stdout_text().splitlines() if l.startswith("{")]
    assert lines[-1]["client_ip"] == "10.0.0.1"


def test_rewrite_and_header_edits(gateway, upstream):
    up = upstream(lambda r: (200, [("Server", "up/1"), ("X-Frame-Options", "SAMEORIGIN"), ("X-Keep", "1")], b"ok"))
    routes = """      - name: users
        match: { path_prefix: /users, methods: [GET] }
        rewrite: { strip_prefix: /users, add_prefix: /v1/people, host: users.internal }
        request_headers: { set: { x-gateway: sluice }, remove: [x-debug] }
        response_headers: { set: { x-frame-options: DENY }, remove: [server] }
        backend: svc
"""
    gw = gateway(simple_config(up.address, routes_extra=routes))
    r = requests.get(gw.url("/users/7?full=1"), headers={"x-debug": "1"})
    assert up.last.target == "/v1/people/7?full=1"
    assert up.last.header("host") == "users.internal"
    assert up.last.header("x-gateway") == "sluice" and up.last.header("x-debug") is None
    assert r.headers["x-frame-options"] == "DENY"  # the upstream's value replaced, not joined
    assert "server" not in r.headers and r.headers["x-keep"] == "1"
    r = requests.post(gw.url("/users/7"))
    assert up.last.target == "/users/7"  # POST is not in the users route: falls to main
    assert r.headers["server"] == "up/1" and r.headers["x-frame-options"] == "SAMEORIGIN"


def test_header_edits_replace_identity_headers(gateway, upstream):
    # A route's edits that name the gateway's own headers win over the gateway's values
    # (worked out once per config: HeaderEditIndex), and received copies of edited names go.
    up = upstream()
    routes = """      - name: edits
        match: { path_prefix: /edits }
        request_headers:
          set: { x-forwarded-for: 198.51.100.1, x-request-id: fixed, X-Long-Custom-Header-Name: v }
          remove: [x-forwarded-proto, x-forwarded-host, user-agent]
        backend: svc
"""
    gw = gateway(simple_config(up.address, routes_extra=routes))
    requests.get(gw.url("/edits"), headers={"X-Forwarded-For": "203.0.113.9", "X-LONG-CUSTOM-HEADER-NAME": "old",
                                            "User-Agent": "ua", "Accept": "a/b"})
    h = up.last
    assert h.header("x-forwarded-for") == "198.51.100.1" and h.header("x-request-id") == "fixed"
    assert h.header("x-long-custom-header-name") == "v" and h.header("user-agent") is None
    assert h.header("x-forwarded-proto") is None and h.header("x-forwarded-host") is None
    assert h.header("accept") == "a/b" and h.header("host") is not None
    assert [n.lower() for n, _ in h.headers].count("x-forwarded-for") == 1
    assert [n.lower() for n, _ in h.headers].count("x-long-custom-header-name") == 1
    requests.get(gw.url("/other"), headers={"User-Agent": "ua"})  # the main route: no edits
    assert up.last.header("x-forwarded-proto") == "http" and up.last.header("user-agent") == "ua"
    assert up.last.header("x-forwarded-for") == "127.0.0.1"


def test_routing_precedence_host_headers_regex(gateway, upstream):
    a, b, c, d = upstream(lambda r: (200, [], b"a")), upstream(lambda r: (200, [], b"b")), upstream(
        lambda r: (200, [], b"c")), upstream(lambda r: (200, [], b"d"))
    config = f"""
version: 1
admin: {{ listen: 127.0.0.1:{{{{ADMIN_PORT}}}} }}
listeners:
  - name: public
    listen: 127.0.0.1:{{{{PORT}}}}
    routes:
      - {{ name: v2, match: {{ path_prefix: /api, headers: {{ x-api-version: "2" }} }}, backend: b }}
      - {{ name: wild, match: {{ host: "*.example.com", path_prefix: /api }}, backend: c }}
      - {{ name: num, match: {{ path_regex: '^/api/[0-9]+$' }}, backend: d }}
      - {{ name: api, match: {{ path_prefix: /api }}, backend: a }}
backends:
  a: {{ endpoints: [{a.address}] }}
  b: {{ endpoints: [{b.address}] }}
  c: {{ endpoints: [{c.address}] }}
  d: {{ endpoints: [{d.address}] }}
"""
    gw = gateway(config)
    assert requests.get(gw.url("/api/x"), headers={"x-api-version": "2"}).text == "b"
    assert requests.get(gw.url("/api/x"), headers={"host": "shop.example.com"}).text == "c"
    assert requests.get(gw.url("/api/x"), headers={"host": "example.com"}).text == "a"
    assert requests.get(gw.url("/api/42")).text == "d"
    assert requests.get(gw.url("/api")).text == "a"
    r = requests.get(gw.url("/apix"))
    assert r.status_code == 404 and r.json()["error"] == "no_route"
    assert r.headers["content-type"] == "application/json"
    # dot segments are resolved before routing: /x/../api/x is /api/x
    assert status_of(raw(gw.port, b"GET /x/../api/%34%32 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")) == 200
    assert d.last.target == "/api/42"


def test_weighted_split(gateway, upstream):
    a, b = upstream(lambda r: (200, [], b"a")), upstream(lambda r: (200, [], b"b"))
    config = f"""
version: 1
admin: {{ listen: 127.0.0.1:{{{{ADMIN_PORT}}}} }}
observability: {{ access_log: {{ output: none }} }}
listeners:
  - name: public
    listen: 127.0.0.1:{{{{PORT}}}}
    routes:
      - name: s
        split: [ {{ backend: a, weight: 80 }}, {{ backend: b, weight: 20 }} ]
backends:
  a: {{ endpoints: [{a.address}] }}
  b: {{ endpoints: [{b.address}] }}
"""
    gw = gateway(config)
    counts = {"a": 0, "b": 0}
    with requests.Session() as s:
        for _ in range(1000):
            counts[s.get(gw.url("/")).text] += 1
    assert 720 <= counts["a"] <= 880, counts


def test_load_balancing_policies(gateway, upstream):
    ups = [upstream(lambda r, i=i: (200, [], str(i).encode())) for i in range(3)]
    eps = ", ".join(u.address for u in ups)
    config = f"""
version: 1
admin: {{ listen: 127.0.0.1:{{{{ADMIN_PORT}}}} }}
listeners:
  - name: public
    listen: 127.0.0.1:{{{{PORT}}}}
    routes:
      - {{ name: rr, match: {{ path_prefix: /rr }}, backend: rr }}
      - {{ name: ch, match: {{ path_prefix: /ch }}, backend: ch }}
      - {{ name: lr, match: {{ path_prefix: /lr }}, backend: lr }}
backends:
  rr: {{ endpoints: [{eps}], load_balancing: round_robin }}
  ch: {{ endpoints: [{eps}], load_balancing: consistent_hash, hash_on: "header:x-user" }}
  lr: {{ endpoints: [{eps}], load_balancing: least_request }}
"""
    gw = gateway(config)
    with requests.Session() as s:
        seen = [s.get(gw.url("/rr")).text for _ in range(9)]
        assert sorted(seen) == sorted(["0", "1", "2"] * 3)
        for user in ["alice", "bob", "carol", "dave"]:
            answers = {s.get(gw.url("/ch"), headers={"x-user": user}).text for _ in range(5)}
            assert len(answers) == 1, (user, answers)
        assert {s.get(gw.url("/lr")).text for _ in range(60)} == {"0", "1", "2"}


def test_head_and_204(gateway, upstream):
    def handler(req):
        if req.target == "/empty":
            return 204, [], b""
        return 200, [("content-length", "11")], b"" if req.method == "HEAD" else b"upstream ok"

    up = upstream(handler)
    gw = gateway(simple_config(up.address))
    with requests.Session() as s:
        r = s.head(gw.url("/x"))
        assert r.status_code == 200 and r.headers["content-length"] == "11" and r.content == b""
        r = s.get(gw.url("/empty"))
        assert r.status_code == 204
        r = s.get(gw.url("/x"))
        assert r.text == "upstream ok"


def test_large_bodies_stream_with_bounded_memory(gateway, upstream, tmp_path):
    size = 50 * 1024 * 1024

    def handler(req, wfile):
        if req.method == "GET":
            wfile.write(f"HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n".encode())
            block = b"z" * 65536
            for _ in range(size // 65536):
                wfile.write(block)
            wfile.flush()
        else:
            out = json.dumps({"len": len(req.body)}).encode()
            wfile.write(f"HTTP/1.1 200 OK\r\ncontent-length: {len(out)}\r\n\r\n".encode() + out)
            wfile.flush()
        return None

    up = upstream(handler)
    gw = gateway(simple_config(up.address, listener_extra="    limits: { max_request_body_bytes: 100MiB }"))
    baseline = gw.rss_kib()
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.write(b"u" * size)
    out = subprocess.run(["curl", "-s", "-T", str(big), "-X", "POST", gw.url("/up")], capture_output=True, timeout=60)
    assert json.loads(out.stdout)["len"] == size
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}", gw.url("/down")],
                         capture_output=True, timeout=60)
    assert int(out.stdout) == size
    peak = gw.rss_kib("VmHWM")
    assert peak - baseline < 40 * 1024, f"RSS grew by {peak - baseline} KiB for 50 MiB bodies"


def test_expect_100_continue(gateway, upstream, tmp_path):
    up = upstream()
    gw = gateway(simple_config(up.address))
    body = tmp_path / "b.txt"
    body.write_bytes(b"q" * 5000)
    start = time.time()
    out = subprocess.run(["curl", "-s", "-H", "Expect: 100-continue", "--data-binary", f"@{body}", gw.url("/e")],
                         capture_output=True, timeout=10)
    assert out.stdout == b"upstream ok"
    assert time.time() - start < 0.9  # curl waits 1 s when no 100 Continue arrives
    assert up.last.body == b"q" * 5000 and up.last.header("expect") is None


def test_pipelined_requests_answer_in_order(gateway, upstream):
    def handler(req):
        if req.target == "/slow":
            time.sleep(0.2)
        return 200, [], req.target.encode()

    up = upstream(handler)
    gw = gateway(simple_config(up.address))
    data = b"".join(f"GET {p} HTTP/1.1\r\nHost: h\r\n\r\n".encode() for p in ["/slow", "/a", "/b"])
    data += b"GET /last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    answer = raw(gw.port, data)
    bodies = [part for part in answer.split(b"\r\n\r\n")[1::1] if part]
    text = answer.decode()
    assert text.count("HTTP/1.1 200") == 4
    assert text.index("/slow") < text.index("/a") < text.index("/b") < text.index("/last")


def test_http10_client(gateway, upstream):
    def handler(req):
        return 200, [("transfer-encoding", "chunked")], iter([b"3\r\nabc\r\n0\r\n\r\n"])

    up = upstream(handler)
    gw = gateway(simple_config(up.address))
    answer = raw(gw.port, b"GET /old HTTP/1.0\r\n\r\n")
    assert status_of(answer) == 200
    head, body = answer.split(b"\r\n\r\n", 1)
    assert b"chunked" not in head.lower() and body == b"abc"


def test_access_log_fields(gateway, upstream):
    up = upstream()
    gw = gateway(simple_config(up.address))
    r = requests.get(gw.url("/logged?q=1"), headers={"authorization": "Bearer secret-token", "cookie": "s=secret"})
    time.sleep(0.4)
    lines = [json.loads(l) for l in gw.stdout_text().splitlines() if l.startswith("{")]
    entry = lines[-1]
    # the generated id is the same text in the response, upstream and log
    assert entry["request_id"] == r.headers["x-request-id"] == up.last.header("x-request-id")
    for key in ["time", "request_id", "client_ip", "method", "host", "path", "protocol", "status", "route", "backend",
                "endpoint", "upstream_status", "bytes_in", "bytes_out", "duration_ms", "upstream_duration_ms",
                "retries", "error", "user"]:
        assert key in entry, key
    assert entry["path"] == "/logged" and entry["route"] == "main" and entry["backend"] == "svc"
    assert entry["endpoint"] == up.address and entry["upstream_status"] == 200 and entry["status"] == 200
    assert entry["time"].endswith("Z") and "T" in entry["time"]
    assert "secret" not in gw.stdout_text()


def test_access_log_to_file(gateway, upstream, tmp_path):
    up = upstream()
    log = tmp_path / "access.log"
    cfg = simple_config(up.address).replace("output: stdout", f"output: {log}")
    gw = gateway(cfg)
    for _ in range(5):
        requests.get(gw.url("/f"))
    time.sleep(0.4)
    lines = log.read_text().splitlines()
    assert len(lines) == 5 and all(json.loads(l)["status"] == 200 for l in lines)


def test_upstream_closing_idle_connections_is_handled(gateway, upstream):
    """An upstream that answers `connection: close` (or closes idle keep-alive connections) must
    never cost a client request, and the idle gauge must not drift."""
    up = upstream(lambda req: (200, [("connection", "close")], b"bye"))
    gw = gateway(simple_config(up.address))
    with requests.Session() as s:
        for _ in range(20):
            r = s.get(gw.url("/c"))
            assert r.status_code == 200 and r.text == "bye"
    assert up.connections == 20
    metrics = requests.get(gw.admin("/metrics")).text
    assert 'sluice_upstream_connections{backend="svc",state="idle"} 0' in metrics
    assert 'sluice_upstream_connections{backend="svc",state="active"} 0' in metrics


def test_max_connection_age(gateway, upstream):
    up = upstream()
    gw = gateway(simple_config(up.address, listener_extra="    limits: { max_connection_age: 300ms }"))
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
        s.sendall(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
        first = s.recv(65536)
        assert status_of(first) == 200 and b"connection: close" not in first.lower()
        time.sleep(0.5)
        s.sendall(b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
        second = b""
        while True:
            piece = s.recv(65536)
            if not piece:
                break
            second += piece
        assert status_of(second) == 200 and b"connection: close" in second.lower()
