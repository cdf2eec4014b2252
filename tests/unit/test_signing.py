"""Agent keys and signatures, including interop with the real openssl binary."""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stemedb import signing
from stemedb.errors import SignatureInvalid
from stemedb.signing import SIGNATURE_HEADER, AgentKey

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl binary not installed")

BODY = b'{"subject":"paris","predicate":"capital_of","object":"france","confidence":0.92}'


def openssl(*args: str | Path, stdin: bytes | None = None) -> bytes:
    assert OPENSSL is not None
    proc = subprocess.run(
        [OPENSSL, *map(str, args)], input=stdin, capture_output=True, check=False, timeout=30
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


# -- keys and signatures -------------------------------------------------------------------


def test_generate_sign_verify() -> None:
    key = AgentKey.generate()
    assert len(key.agent_id) == 64
    assert key.agent_id == key.agent_id.lower()
    assert bytes.fromhex(key.agent_id) == key.public_key
    sig = key.sign(BODY)
    assert len(sig) == 64
    assert signing.verify(key.agent_id, BODY, sig)
    assert not signing.verify(key.agent_id, BODY + b" ", sig)
    assert not signing.verify(AgentKey.generate().agent_id, BODY, sig)


def test_signatures_are_deterministic_and_b64_encoded() -> None:
    key = AgentKey(bytes(range(32)))
    assert key.sign(BODY) == key.sign(BODY)
    assert base64.b64decode(key.sign_b64(BODY)) == key.sign(BODY)
    assert signing.decode_signature(key.sign_b64(BODY)) == key.sign(BODY)


def test_verify_rejects_malformed_agent_ids() -> None:
    key = AgentKey.generate()
    sig = key.sign(BODY)
    assert not signing.verify(key.agent_id.upper(), BODY, sig)
    assert not signing.verify(key.agent_id[:-2], BODY, sig)
    assert not signing.verify("zz" * 32, BODY, sig)


def test_seed_must_be_32_bytes() -> None:
    with pytest.raises(ValueError):
        AgentKey(b"short")


@given(body=st.binary(max_size=2048), seed=st.binary(min_size=32, max_size=32))
def test_sign_verify_roundtrip_any_body(body: bytes, seed: bytes) -> None:
    key = AgentKey(seed)
    header = key.sign_b64(body)
    assert signing.verify(key.agent_id, body, signing.decode_signature(header))


# -- files -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["pem", "hex"])
def test_save_load_roundtrip(tmp_path: Path, fmt: str) -> None:
    key = AgentKey.generate()
    path = tmp_path / f"agent.{fmt}"
    key.save(path, fmt=fmt)
    loaded = AgentKey.load(path)
    assert loaded.agent_id == key.agent_id
    assert loaded.seed == key.seed
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_pem_and_hex_layouts(tmp_path: Path) -> None:
    key = AgentKey.generate()
    assert key.to_pem().startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert AgentKey.from_bytes(key.to_pem()).agent_id == key.agent_id
    assert AgentKey.from_bytes(key.to_hex().encode()).agent_id == key.agent_id
    assert AgentKey.from_bytes(key.to_hex().upper().encode() + b"\n").agent_id == key.agent_id


def test_save_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "agent.pem"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        AgentKey.generate().save(path)
    assert path.read_bytes() == b"precious"


def test_save_mode_ignores_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        AgentKey.generate().save(tmp_path / "k.pem")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a key",
        b"ab" * 31,
        b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ],
)
def test_from_bytes_rejects_garbage(data: bytes) -> None:
    with pytest.raises(ValueError):
        AgentKey.from_bytes(data)


# -- header codec ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (None, "missing"),
        ("", "missing"),
        ("not*base64!", "base64"),
        ("AAAA", "64 bytes"),
        (base64.b64encode(bytes(65)).decode(), "64 bytes"),
    ],
)
def test_decode_signature_errors(header: str | None, match: str) -> None:
    with pytest.raises(SignatureInvalid, match=match) as info:
        signing.decode_signature(header)
    assert info.value.status == 401
    assert SIGNATURE_HEADER in str(info.value)


def test_decode_signature_tolerates_surrounding_whitespace() -> None:
    sig = AgentKey.generate().sign(BODY)
    assert signing.decode_signature(" " + signing.encode_signature(sig) + "\n") == sig


# -- openssl interop ----------------------------------------------------------------------


@needs_openssl
def test_openssl_key_loads_with_same_agent_id(tmp_path: Path) -> None:
    pem = tmp_path / "key.pem"
    openssl("genpkey", "-algorithm", "ed25519", "-out", pem)
    key = AgentKey.load(pem)
    pub = openssl("pkey", "-in", pem, "-pubout")
    assert signing.public_key_from_spki_pem(pub) == key.agent_id


@needs_openssl
def test_openssl_signature_verifies(tmp_path: Path) -> None:
    pem = tmp_path / "key.pem"
    body = tmp_path / "body.json"
    body.write_bytes(BODY)
    openssl("genpkey", "-algorithm", "ed25519", "-out", pem)
    agent_id = signing.public_key_from_spki_pem(openssl("pkey", "-in", pem, "-pubout"))
    sig = openssl("pkeyutl", "-sign", "-inkey", pem, "-rawin", "-in", body)
    # The header as the spec's shell recipe produces it (base64 -w0).
    header = base64.b64encode(sig).decode()
    decoded = signing.decode_signature(header)
    assert signing.verify(agent_id, BODY, decoded)
    assert not signing.verify(agent_id, BODY.replace(b"0.92", b"0.93"), decoded)
    # Same key, same signature: Ed25519 is deterministic.
    assert AgentKey.load(pem).sign(BODY) == sig


@needs_openssl
def test_our_pem_and_signature_work_in_openssl(tmp_path: Path) -> None:
    key = AgentKey.generate()
    ours = tmp_path / "ours.pem"
    key.save(ours)
    pub = openssl("pkey", "-in", ours, "-pubout")
    assert signing.public_key_from_spki_pem(pub) == key.agent_id

    pub_pem = tmp_path / "pub.pem"
    pub_pem.write_bytes(pub)
    body = tmp_path / "body.json"
    body.write_bytes(BODY)
    sig = tmp_path / "sig"
    sig.write_bytes(key.sign(BODY))
    out = openssl(
        "pkeyutl", "-verify", "-pubin", "-inkey", pub_pem, "-rawin", "-in", body, "-sigfile", sig
    )
    assert b"Signature Verified Successfully" in out

    body.write_bytes(BODY + b" ")
    verify = ["pkeyutl", "-verify", "-pubin", "-inkey", pub_pem, "-rawin", "-in", body]
    proc = subprocess.run(
        [str(OPENSSL), *map(str, verify), "-sigfile", str(sig)], capture_output=True, check=False
    )
    assert proc.returncode != 0


@needs_openssl
def test_public_key_from_spki_pem_rejects_other_keys(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        signing.public_key_from_spki_pem(AgentKey.generate().to_pem())
    pem = tmp_path / "ec.pem"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", pem)
    with pytest.raises(ValueError):
        signing.public_key_from_spki_pem(openssl("pkey", "-in", pem, "-pubout"))
    with pytest.raises(ValueError):
        AgentKey.load(pem)
