"""The README's first-write walk-through, run verbatim against a real server: sign with
openssl, post with curl, read it back, kill -9, restart, still there."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.helpers import ROOT, ServerProcess

pytestmark = pytest.mark.integration


def _readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## First write", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_readme_openssl_curl_walkthrough_survives_kill9(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "data").start()
    try:
        script = _readme_block().replace("127.0.0.1:18180", f"127.0.0.1:{srv.port}")
        out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        # curl prints the two answers back to back: the POST's, then the listing's
        decoder = json.JSONDecoder()
        posted, end = decoder.raw_decode(out.stdout.strip())
        listing, _ = decoder.raw_decode(out.stdout.strip()[end:].lstrip())
        assert posted["status"] == "accepted"
        assert posted["id"] == hashlib.sha256((tmp_path / "body.json").read_bytes()).hexdigest()
        assert [i["id"] for i in listing["items"]] == [posted["id"]]
        srv.kill9()
        srv.start()
        got = httpx.get(f"{srv.url}/v1/assertions/{posted['id']}")
        assert got.status_code == 200 and got.json()["subject"] == "paris"
    finally:
        srv.stop()
