"""Drives bench/alloc-check.sh: upstream, sluice under the malloc counter, keep-alive load."""
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

work, total, threshold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # http.server writes the head and the body in two sends; with Nagle on, the body waits for
    # the ACK of the head, which the proxy delays (40 ms) while it has nothing to send back.
    # Runs then crawled at ~25 requests/s whenever the kernel was in delayed-ACK mode.
    disable_nagle_algorithm = True

    def do_GET(self):
        self.send_response(200)
        self.send_header("content-length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *a):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


up = ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=up.serve_forever, daemon=True).start()
port, admin = free_port(), free_port()
while admin == port:  # the kernel may hand out the same free port twice in a row
    admin = free_port()
config = os.path.join(work, "sluice.yaml")
with open(config, "w") as f:
    f.write(f"""version: 1
runtime: {{ event_loops: 1 }}
admin: {{ listen: 127.0.0.1:{admin} }}
observability: {{ access_log: {{ output: none }} }}
listeners:
  - name: bench
    listen: 127.0.0.1:{port}
    routes: [ {{ name: all, backend: up }} ]
backends:
  up: {{ endpoints: [127.0.0.1:{up.server_address[1]}] }}
""")
count_file = os.path.join(work, "count")
env = dict(os.environ, LD_PRELOAD=os.path.join(work, "malloc-count.so"), MALLOC_COUNT_FILE=count_file)
proc = subprocess.Popen(["./.build/release/sluice", "serve", "--config", config, "--log-level", "error"], env=env)
try:
    conn = None
    for _ in range(200):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port)
            conn.request("GET", "/")
            conn.getresponse().read()
            break
        except OSError:
            time.sleep(0.02)

    def run(n):
        for _ in range(n):
            conn.request("GET", "/")
            r = conn.getresponse()
            r.read()
            assert r.status == 200

    def snapshot():
        proc.send_signal(signal.SIGUSR2)
        time.sleep(0.2)
        return int(open(count_file).read())

    run(2000)  # warm up: pools, caches, metric series
    before = snapshot()
    run(total)
    after = snapshot()
    per = (after - before) / total
    print(f"allocations per proxied request: {per:.1f} (threshold {threshold:g}, {total} requests, 1 event loop)")
    if per > threshold:
        print("FAIL: allocations per request exceed the committed threshold (bench/alloc-threshold)")
        sys.exit(1)
    print("ok")
finally:
    proc.terminate()
    proc.wait(timeout=10)
    up.shutdown()
