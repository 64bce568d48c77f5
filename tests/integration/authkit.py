"""Real parts for the auth tests: keys for every JWS algorithm (cryptography), tokens minted by
PyJWT, a JWKS server (http or https with a test CA) that can rotate keys, go down, stall and
count its fetches, and a webhook receiver."""
import base64
import json
import socketserver
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
SECRET = "a-very-long-shared-secret-of-at-least-32-bytes!"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class KeyPair:
    def __init__(self, alg, kid):
        self.alg, self.kid = alg, kid
        if alg.startswith(("RS", "PS")):
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        elif alg == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        elif alg == "ES384":
            self.private = ec.generate_private_key(ec.SECP384R1())
            jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        elif alg == "EdDSA":
            self.private = ed25519.Ed25519PrivateKey.generate()
            jwk = OKPAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            raise ValueError(alg)
        jwk.update({"kid": kid, "alg": alg, "use": "sig"})
        self.jwk = jwk

    def token(self, claims=None, headers=None, **kw):
        return mint(self.private, self.alg, self.kid, claims, headers, **kw)


def claims(**extra):
    now = int(time.time())
    out = {"sub": "alice", "iss": "https://id.test", "aud": "api", "iat": now, "exp": now + 300, "role": "admin"}
    out.update(extra)
    return {k: v for k, v in out.items() if v is not None}


def mint(key, alg, kid=None, body=None, headers=None):
    h = dict(headers or {})
    if kid is not None:
        h.setdefault("kid", kid)
    return jwt.encode(body if body is not None else claims(), key, algorithm=alg, headers=h)


def unsigned(body=None, alg="none", header_extra=None):
    header = {"alg": alg, "typ": "JWT"}
    header.update(header_extra or {})
    return b64(json.dumps(header).encode()) + "." + b64(json.dumps(body or claims()).encode()) + "."


class JWKSServer:
    """Serves {"keys": [...]} at /jwks.json. `mode`: ok, down (503), stall (sleeps), garbage,
    huge (over the 1 MiB cap)."""

    def __init__(self, keys, tls_cert=None):
        self.keys = list(keys)
        self.fetches = 0
        self.mode = "ok"
        self.stall = 3.0
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.fetches += 1
                if outer.mode == "down":
                    self.send_response(503)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                if outer.mode == "stall":
                    time.sleep(outer.stall)
                body = b"not json{" if outer.mode == "garbage" else json.dumps({"keys": [k.jwk for k in outer.keys]}).encode()
                if outer.mode == "huge":  # valid keys padded past the 1 MiB cap
                    body = json.dumps({"keys": [k.jwk for k in outer.keys], "pad": "x" * (1 << 20)}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class S(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = S(("127.0.0.1", 0), H)
        if tls_cert is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls_cert.configure_cert(ctx)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        scheme = "https" if tls_cert is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class WebhookReceiver:
    """Records POSTed audit events. `mode`: ok, error (500), stall (sleeps)."""

    def __init__(self):
        self.bodies = []
        self.mode = "ok"
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length", "0"))
                data = self.rfile.read(length)
                if outer.mode == "stall":
                    time.sleep(5)
                if outer.mode == "error":
                    self.send_response(500)
                else:
                    outer.bodies.append(json.loads(data))
                    self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

        class S(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = S(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/audit"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self):
        out = []
        for b in self.bodies:
            out.extend(b if isinstance(b, list) else [b])
        return out

    def wait_for(self, kind, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = [e for e in self.events() if e.get("event") == kind]
            if found:
                return found
            time.sleep(0.05)
        return []

    def close(self):
        self.server.shutdown()
        self.server.server_close()
