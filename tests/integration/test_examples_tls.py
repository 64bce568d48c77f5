"""The TLS, passthrough and WebSocket examples, run as written (ports and upstream addresses
swapped for free ones; the example certificates used as they are)."""
import os
import ssl

import requests
from websockets.sync.client import connect

from conftest import ROOT
from test_websocket import WSUpstream
from tlskit import Certs, TLSServer, https_reply, tls_get

CERTS = os.path.join(ROOT, "examples", "certs")


def load(name, swaps):
    text = open(os.path.join(ROOT, "examples", name)).read()
    text = text.replace("version: 1\n", "version: 1\nadmin: { listen: 127.0.0.1:{{ADMIN_PORT}} }\n", 1)
    for a, b in swaps.items():
        text = text.replace(a, b)
    return text


def example_context():
    return ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem"))


def test_https_example(gateway, upstream, tmp_path):
    certs = Certs(tmp_path)
    internal = TLSServer(*certs.write("internal", "internal.example.com"), https_reply("internal"))
    try:
        up = upstream()
        gw = gateway(load("https.yaml", {
            "127.0.0.1:8443": "127.0.0.1:{{PORT}}", "127.0.0.1:9000": up.address, "127.0.0.1:9443": internal.address,
            "ca: certs/ca.pem": f"ca: {certs.ca_path}", "certs/": CERTS + "/"}))
        ctx = example_context()
        assert tls_get(gw.port, "localhost", ctx, "/")[2] == b"hello over TLS\n"
        status, _, body, facts = tls_get(gw.port, "api.example.com", ctx, "/users/7")
        assert body == b"upstream ok" and up.last.target == "/users/7"
        assert up.last.header("x-forwarded-proto") == "https" and facts["version"] == "TLSv1.3"
        # /users needs the server name api.example.com; via localhost it falls to hello
        assert tls_get(gw.port, "localhost", ctx, "/users/7")[2] == b"hello over TLS\n"
        assert tls_get(gw.port, "localhost", ctx, "/internal/x")[2] == b"internal\n"
    finally:
        internal.close()


def test_passthrough_example(gateway, tmp_path):
    certs = Certs(tmp_path)
    a = TLSServer(*certs.write("a", "a.example.com"), https_reply("a"))
    b = TLSServer(*certs.write("b", "*.b.example.com", "other.example.org"), https_reply("b"))
    try:
        gw = gateway(load("passthrough.yaml", {
            "127.0.0.1:8443": "127.0.0.1:{{PORT}}", "127.0.0.1:9443": a.address, "127.0.0.1:9444": b.address}))
        ctx = certs.client_context()
        assert tls_get(gw.port, "a.example.com", ctx)[2] == b"a\n"
        assert tls_get(gw.port, "x.b.example.com", ctx)[2] == b"b\n"
        assert tls_get(gw.port, "other.example.org", ctx)[2] == b"b\n"  # the default route
    finally:
        a.close()
        b.close()


def test_websocket_example(gateway):
    ws = WSUpstream()
    try:
        gw = gateway(load("websocket.yaml", {"127.0.0.1:8080": "127.0.0.1:{{PORT}}", "127.0.0.1:9000": ws.address}))
        with connect(f"ws://127.0.0.1:{gw.port}/chat/room1") as c:
            c.send("hi")
            assert c.recv(timeout=5) == "hi"
        # /api strips Upgrade: the upstream answers a plain GET, not a tunnel
        r = requests.get(gw.url("/api"), headers={"Upgrade": "websocket", "Connection": "Upgrade"}, timeout=5)
        assert r.status_code != 101
    finally:
        ws.close()
