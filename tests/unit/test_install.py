"The LightFM installer refuses a tarball whose sha256 differs and explains an unreachable index."
import http.server
import json
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "install_lightfm.py"
BASE_PYTHON = shutil.which("python3.11")  # a Python without lightfm, as on a fresh machine

pytestmark = pytest.mark.skipif(BASE_PYTHON is None, reason="python3.11 not on PATH")


@pytest.fixture
def fake_index():
    "A loopback package index serving a lightfm-1.17.tar.gz with the wrong content."
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            host = f"http://127.0.0.1:{self.server.server_port}"
            if self.path.startswith("/simple/lightfm"):
                body = json.dumps({"files": [{"filename": "lightfm-1.17.tar.gz",
                                              "url": f"{host}/files/lightfm-1.17.tar.gz"}]})
                body = body.encode()
            else:
                body = b"not the real sdist"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/simple"
    server.shutdown()


def run_installer(index_url, cache):
    env = {"PATH": "/usr/bin:/bin", "PIP_INDEX_URL": index_url, "RWB_CACHE": str(cache),
           "HOME": str(cache)}
    return subprocess.run([BASE_PYTHON, str(SCRIPT)], capture_output=True, text=True, env=env)


def test_wrong_hash_is_refused_and_not_cached(fake_index, tmp_path):
    result = run_installer(fake_index, tmp_path)
    assert result.returncode == 1
    assert "refusing to build" in result.stderr and "sha256" in result.stderr
    assert not (tmp_path / "lightfm-1.17.tar.gz").exists()


def test_unreachable_index_gives_a_clear_message(tmp_path):
    result = run_installer("http://127.0.0.1:9/simple", tmp_path)
    assert result.returncode == 1
    assert "cannot read the package index for lightfm" in result.stderr
    assert "Traceback" not in result.stderr
