"""Agent keys: Ed25519 key pairs, signatures over raw body bytes, header codec.

An agent id is the lowercase hex of the 32-byte raw public key. Signatures travel in
``X-Agent-Signature`` as padded standard base64 of the 64-byte Ed25519 signature.
Keys load from PKCS#8 PEM (what ``openssl genpkey -algorithm ed25519`` writes) or from
a file holding the 32-byte seed as 64 hex characters.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path

import nacl.exceptions
import nacl.signing

from .errors import SignatureInvalid

SIGNATURE_HEADER = "X-Agent-Signature"

# RFC 8410 PKCS#8 / SPKI prefixes for Ed25519 (the key bytes follow).
_PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
_PEM_RE = re.compile(rb"-----BEGIN ([A-Z ]+)-----(.*?)-----END \1-----", re.S)
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


class AgentKey:
    """An Ed25519 signing key for one agent."""

    __slots__ = ("_signing",)

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        self._signing = nacl.signing.SigningKey(seed)

    @classmethod
    def generate(cls) -> AgentKey:
        return cls(os.urandom(32))

    @property
    def seed(self) -> bytes:
        return bytes(self._signing)

    @property
    def public_key(self) -> bytes:
        return bytes(self._signing.verify_key)

    @property
    def agent_id(self) -> str:
        return self.public_key.hex()

    def sign(self, body: bytes) -> bytes:
        return self._signing.sign(body).signature

    def sign_b64(self, body: bytes) -> str:
        return encode_signature(self.sign(body))

    # -- serialisation -------------------------------------------------------------

    def to_pem(self) -> bytes:
        der = _PKCS8_PREFIX + self.seed
        b64 = base64.encodebytes(der).replace(b"\n", b"")
        return b"-----BEGIN PRIVATE KEY-----\n" + b64 + b"\n-----END PRIVATE KEY-----\n"

    def to_hex(self) -> str:
        return self.seed.hex()

    def save(self, path: str | Path, *, fmt: str = "pem") -> None:
        """Write the key with mode 0600; refuses to overwrite an existing file."""
        data = self.to_pem() if fmt == "pem" else (self.to_hex() + "\n").encode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    @classmethod
    def from_bytes(cls, data: bytes) -> AgentKey:
        text = data.strip()
        if _HEX64.match(text.decode("ascii", "replace")):
            return cls(bytes.fromhex(text.decode()))
        m = _PEM_RE.search(data)
        if not m or m.group(1) != b"PRIVATE KEY":
            raise ValueError("expected a PKCS#8 Ed25519 PEM private key or 64 hex characters")
        der = base64.b64decode(b"".join(m.group(2).split()))
        if len(der) != 48 or not der.startswith(_PKCS8_PREFIX):
            raise ValueError("PEM key is not an Ed25519 private key")
        return cls(der[len(_PKCS8_PREFIX) :])

    @classmethod
    def load(cls, path: str | Path) -> AgentKey:
        return cls.from_bytes(Path(path).read_bytes())

    def __repr__(self) -> str:
        return f"AgentKey(agent_id={self.agent_id[:16]}…)"


def encode_signature(sig: bytes) -> str:
    return base64.b64encode(sig).decode("ascii")


def decode_signature(header: str | None) -> bytes:
    """Parse the X-Agent-Signature header value into 64 raw bytes."""
    if not header:
        raise SignatureInvalid(f"the {SIGNATURE_HEADER} header is missing")
    try:
        sig = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureInvalid(f"{SIGNATURE_HEADER} is not valid base64") from None
    if len(sig) != 64:
        raise SignatureInvalid(f"{SIGNATURE_HEADER} must decode to 64 bytes, got {len(sig)}")
    return sig


def parse_agent_id(agent_id: str) -> bytes:
    if not isinstance(agent_id, str) or not _HEX64.match(agent_id) or agent_id != agent_id.lower():
        raise ValueError("agent_id must be 64 lowercase hex characters")
    return bytes.fromhex(agent_id)


def verify(agent_id: str, body: bytes, signature: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``body`` by ``agent_id``."""
    try:
        key = nacl.signing.VerifyKey(parse_agent_id(agent_id))
        key.verify(body, signature)
    except (nacl.exceptions.BadSignatureError, ValueError, nacl.exceptions.CryptoError):
        return False
    return True


def public_key_from_spki_pem(data: bytes) -> str:
    """Agent id from an SPKI public-key PEM (``openssl pkey -pubout``)."""
    m = _PEM_RE.search(data)
    if not m or m.group(1) != b"PUBLIC KEY":
        raise ValueError("expected a PUBLIC KEY PEM")
    der = base64.b64decode(b"".join(m.group(2).split()))
    if len(der) != 44 or not der.startswith(_SPKI_PREFIX):
        raise ValueError("PEM key is not an Ed25519 public key")
    return der[len(_SPKI_PREFIX) :].hex()
