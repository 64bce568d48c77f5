"""Test TLS material and TLS servers: a test CA made by trustme, certificates written as PEM
files next to the config, and small real servers (HTTPS, raw TLS, WebSocket) on loopback."""
import datetime
import os
import socket
import socketserver
import ssl
import threading

import trustme


class Certs:
    """A CA and PEM files in `directory`: `write(name, *hosts)` issues a leaf for `hosts` and
    returns (cert_path, key_path)."""

    def __init__(self, directory):
        self.dir = str(directory)
        self.ca = trustme.CA()
        self.ca_path = os.path.join(self.dir, "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_path)

    def write(self, name, *hosts, ca=None, **kwargs):
        leaf = (ca or self.ca).issue_cert(*hosts, **kwargs)
        cert = os.path.join(self.dir, name + ".pem")
        key = os.path.join(self.dir, name + ".key")
        leaf.private_key_pem.write_to_path(key)
        with open(cert, "wb") as f:
            for blob in leaf.cert_chain_pems:
                f.write(blob.bytes())
        return cert, key

    def expired(self, name, *hosts):
        past = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
        return self.write(name, *hosts, not_before=past - datetime.timedelta(days=30), not_after=past)

    def client_context(self, **kwargs):
        ctx = ssl.create_default_context(cafile=self.ca_path)
        for k, v in kwargs.items():
            setattr(ctx, k, v)
        return ctx


def tls_get(port, server_name, ctx, path="/", session=None, host=None):
    """One GET over TLS with SNI `server_name`; returns (status line, headers dict, body, sslsock facts)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    s = ctx.wrap_socket(raw, server_hostname=server_name, session=session)
    facts = {"version": s.version(), "cert": s.getpeercert(), "alpn": s.selected_alpn_protocol()}
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host or server_name or 'x'}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        try:
            piece = s.recv(65536)
        except (ssl.SSLError, ConnectionError):
            break
        if not piece:
            break
        data += piece
    facts.update(reused=s.session_reused, session=s.session)
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        n, _, v = line.partition(":")
        headers[n.strip().lower()] = v.strip()
    return lines[0], headers, body, facts


class TLSServer:
    """A raw TLS server: after the handshake it answers `reply(request_bytes)` to each read.
    `name` says which server answered (passthrough tests)."""

    def __init__(self, cert, key, reply, client_ca=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        if client_ca:  # mutual TLS: a client certificate from this CA is required
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(client_ca)
        self.connections = 0
        self.probes = 0  # requests for /healthz
        self.pooled_connections = 0  # connections that carried a request other than /healthz
        outer = self

        class H(socketserver.BaseRequestHandler):
            def handle(self):
                outer.connections += 1
                counted = False
                try:
                    s = ctx.wrap_socket(self.request, server_side=True)
                    while True:
                        data = s.recv(65536)
                        if not data:
                            return
                        if data.startswith(b"GET /healthz"):
                            outer.probes += 1
                        elif not counted:
                            counted = True
                            outer.pooled_connections += 1
                        answer = reply(data)
                        if answer is None:
                            return
                        s.sendall(answer)
                        if b"connection: close" in data.lower():
                            return
                except (ssl.SSLError, OSError):
                    return

        class S(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = S(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def https_reply(name):
    """An HTTP/1.1 keep-alive answer naming the server, for any request head."""
    def reply(data):
        body = f"{name}\n".encode()
        return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    return reply
