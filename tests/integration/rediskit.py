"""A real redis-server for the tests, on a free loopback port (never the system one), that the
tests can stop, restart, pause and inspect."""
import os
import shutil
import socket
import subprocess
import tempfile
import time

import redis

from conftest import free_port


class RedisServer:
    def __init__(self, password=None, port=None, tls=None):
        """`tls`: (cert, key, ca) PEM paths: the server speaks TLS only (rediss://)."""
        self.port = port or free_port()
        self.password = password
        self.tls = tls
        self.dir = tempfile.mkdtemp(prefix="sluice-redis-")
        self.proc = None
        self.start()

    def start(self):
        ports = ["--port", str(self.port)]
        if self.tls:
            cert, key, ca = self.tls
            ports = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", cert, "--tls-key-file", key,
                     "--tls-ca-cert-file", ca, "--tls-auth-clients", "no"]
        args = ["redis-server", *ports, "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.dir, "--daemonize", "no", "--loglevel", "warning",
                "--enable-debug-command", "local"]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.RedisError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def client(self, db=0):
        extra = {"ssl": True, "ssl_ca_certs": self.tls[2], "ssl_check_hostname": False} if self.tls else {}
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, password=self.password,
                           socket_timeout=5, decode_responses=True, **extra)

    @property
    def url(self):
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class GarbageServer:
    """Accepts connections and answers every command with bytes that are not RESP."""

    def __init__(self):
        import threading
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.closed = False
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            except OSError:
                pass
            conn.close()

    def close(self):
        self.closed = True
        self.sock.close()
