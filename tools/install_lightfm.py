"""Build and install LightFM 1.17 from its source distribution.

LightFM 1.17 (the last release) cannot be installed by pip as published: its setup.py assigns
`__builtins__.__LIGHTFM_SETUP__`, which fails under PEP 517 builds where `__builtins__` is a dict.
This script fetches the sdist from the package index pip is configured with, checks its sha256,
replaces that one line and installs the patched folder into the running interpreter.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

VERSION = "1.17"
FILENAME = f"lightfm-{VERSION}.tar.gz"
SHA256 = "2b77ada182ccd768a8d7643ab3cfcd8b6e855db09087f7cc7329bd63316697a8"
BROKEN_LINE = "__builtins__.__LIGHTFM_SETUP__ = True"
FIXED_LINE = "import builtins; builtins.__LIGHTFM_SETUP__ = True"
CACHE = Path(os.environ.get("RWB_CACHE", Path.home() / ".cache" / "retail_workbench"))


def fail(msg: str) -> None:
    print(f"install_lightfm: {msg}", file=sys.stderr)
    sys.exit(1)


def installed_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("lightfm")
    except PackageNotFoundError:
        return None


def index_url() -> str:
    "The simple index pip uses: PIP_INDEX_URL if set, else pip's own default."
    url = os.environ.get("PIP_INDEX_URL")
    if url:
        return url.rstrip("/")
    from pip._internal.models.index import PyPI
    return PyPI.simple_url.rstrip("/")


def sdist_url() -> str:
    request = urllib.request.Request(
        f"{index_url()}/lightfm/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            page = json.load(response)
    except Exception as exc:  # network, HTTP or JSON errors all mean the same to the user
        fail(f"cannot read the package index for lightfm ({exc}). Check the network or set "
             "PIP_INDEX_URL to an index that serves lightfm, then run `make install` again.")
    for entry in page.get("files", []):
        if entry.get("filename") == FILENAME:
            return entry["url"]
    fail(f"the package index has no {FILENAME}; set PIP_INDEX_URL to an index that has it.")


def download(dest: Path) -> None:
    cached = CACHE / FILENAME
    if not (cached.exists() and sha256(cached) == SHA256):
        CACHE.mkdir(parents=True, exist_ok=True)
        url = sdist_url()
        print(f"install_lightfm: downloading {FILENAME}")
        try:
            with urllib.request.urlopen(url, timeout=120) as response, open(cached, "wb") as out:
                shutil.copyfileobj(response, out)
        except Exception as exc:
            fail(f"download of {FILENAME} failed ({exc}); run `make install` again.")
    digest = sha256(cached)
    if digest != SHA256:
        cached.unlink()
        fail(f"{FILENAME} has sha256 {digest}, expected {SHA256}; refusing to build it.")
    shutil.copy(cached, dest)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    if installed_version() == VERSION:
        print(f"install_lightfm: lightfm {VERSION} already installed")
        return
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / FILENAME
        download(archive)
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        source = Path(tmp) / f"lightfm-{VERSION}"
        setup_py = source / "setup.py"
        text = setup_py.read_text()
        if BROKEN_LINE not in text:
            fail("setup.py of the sdist does not contain the line to patch; refusing to build.")
        setup_py.write_text(text.replace(BROKEN_LINE, FIXED_LINE))
        print(f"install_lightfm: building lightfm {VERSION} (about 15 s)")
        subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation", "-q",
                        str(source)], check=True)


if __name__ == "__main__":
    main()
