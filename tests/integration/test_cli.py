"""The command line as a user runs it: exit codes, messages, golden diagnostics."""
import glob
import os
import socket
import subprocess
import time

import pytest
import requests

from conftest import BIN, ROOT, free_port


def run(*args, env=None):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, **(env or {})))


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "Fixtures", "invalid", "*.yaml"))))
def test_validate_invalid_golden(path):
    out = run("validate", "--config", path)
    assert out.returncode == 1
    expected = open(path[:-5] + ".diag").read().replace("FILE", path).replace("DIR/", os.path.dirname(path) + "/")
    lines = [l for l in out.stderr.splitlines() if not l.endswith(")") or ": invalid (" not in l]
    assert "\n".join(lines) + "\n" == expected


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "Fixtures", "valid", "*.yaml")))
                         + sorted(glob.glob(os.path.join(ROOT, "examples", "*.yaml"))))
def test_validate_valid_and_examples(path):
    out = run("validate", "--config", path, env={"SLUICE_TEST_TOKEN": "t", "SLUICE_ADMIN_TOKEN": "t", "PARTNER_A_KEY": "partner-a-0123456789", "PARTNER_B_KEY": "partner-b-0123456789", "JWT_SECRET": "an-example-secret-of-at-least-32-bytes"})
    assert out.returncode == 0, out.stderr
    assert "valid (" in out.stdout


def test_routes_table_and_explain():
    path = os.path.join(ROOT, "examples", "routing.yaml")
    out = run("routes", "--config", path)
    assert out.returncode == 0 and "users-v2" in out.stdout and "backend orders" in out.stdout
    out = run("routes", "--config", path, "GET", "http://api.example.com/users/7")
    assert out.returncode == 0
    assert "users-v2: no match: header x-api-version" in out.stdout and "=> route users" in out.stdout
    out = run("routes", "--config", path, "GET", "http://other.org/nothing")
    assert "no route" in out.stdout


def test_routes_explain_uses_the_tls_server_name():
    path = os.path.join(ROOT, "examples", "https.yaml")
    out = run("routes", "--config", path, "GET", "https://api.example.com:8443/users/7")
    assert "server_name=api.example.com" in out.stdout and "=> route users" in out.stdout
    out = run("routes", "--config", path, "GET", "https://localhost:8443/users/7")
    assert "users: no match: server name localhost is not api.example.com" in out.stdout
    assert "=> route hello" in out.stdout
    out = run("routes", "--config", path, "GET", "https://127.0.0.1:8443/users/7", "--server-name", "api.example.com")
    assert "=> route users" in out.stdout


def test_version_and_bad_arguments():
    out = run("version")
    assert out.returncode == 0 and out.stdout.startswith("sluice ") and "revision:" in out.stdout
    assert "swift:" in out.stdout and "built:" in out.stdout
    assert run("frobnicate").returncode == 1
    assert run("validate").returncode == 1
    assert run("serve", "--etcd", "http://127.0.0.1:2379/x").returncode == 1


def test_serve_invalid_config_exits_1(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nlisteners: 3\n")
    out = run("serve", "--config", str(bad))
    assert out.returncode == 1 and f"{bad}:2:12: listeners must be a list" in out.stderr


def test_port_in_use_exits_2(tmp_path):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"version: 1\nadmin: {{ listen: off }}\nlisteners:\n  - listen: 127.0.0.1:{port}\n"
                   f"    routes: [ {{ direct_response: {{ status: 200 }} }} ]\n")
    out = run("serve", "--config", str(cfg))
    blocker.close()
    assert out.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr and "address already in use" in out.stderr


def test_embedded_default_config():
    for port in (8080, 9901):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                pytest.skip(f"port {port} is taken on this machine")
    proc = subprocess.Popen([BIN, "serve"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                r = requests.get("http://127.0.0.1:8080/", timeout=0.5)
                break
            except requests.RequestException:
                time.sleep(0.05)
        assert r.text == "Hello from Sluice!\n"
        echo = requests.post("http://127.0.0.1:8080/echo?a=1", headers={"x-test": "yes"}).json()
        assert echo["method"] == "POST" and echo["path"] == "/echo" and echo["headers"]["x-test"] == "yes"
        assert requests.get("http://127.0.0.1:9901/healthz").text == "ok\n"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
