"""Field encryption: AES-256-GCM with one data key per participant (envelope encryption).

The key-encryption key (KEK, the "master key") lives outside the database. Each
participant's data key (DEK) is stored only wrapped by the KEK, so deleting the wrapped
DEK crypto-shreds every ciphertext of that person, including copies in old backups.
Associated data binds each ciphertext to its table, row, participant and field, so a
ciphertext moved to another row or person fails to decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT_V1 = b"\x01"


class MasterKeyError(Exception):
    """A key is missing, malformed or wrong. Messages never contain key material."""


class DecryptionError(Exception):
    """A ciphertext does not open under the key and associated data given."""


def generate_key() -> bytes:
    return os.urandom(KEY_BYTES)


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def decode_key(text: str) -> bytes:
    """Parse a base64 master key; raise MasterKeyError with a fix-it hint when malformed."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError("is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise MasterKeyError(f"must decode to {KEY_BYTES} bytes, got {len(key)}")
    return key


def key_id(kek: bytes) -> str:
    """A short public fingerprint: lets rows say which KEK wrapped them without revealing it."""
    return hashlib.sha256(b"mentorbot/kek-id/v1" + kek).hexdigest()[:12]


def aad(table: str, row: str | int, participant: str | int, field: str) -> bytes:
    return f"mentorbot/v1|{table}|{row}|{participant}|{field}".encode()


Cipher = AESGCM  # a prepared data key: bulk readers open thousands of values with one


def cipher(key: bytes) -> AESGCM:
    """A prepared key for opening many values of one person (bulk readers, workers)."""
    return AESGCM(key)


def seal(key: bytes | AESGCM, plaintext: bytes, associated: bytes) -> bytes:
    cipher = key if isinstance(key, AESGCM) else AESGCM(key)
    nonce = os.urandom(NONCE_BYTES)
    return FORMAT_V1 + nonce + cipher.encrypt(nonce, plaintext, associated)


def open_sealed(key: bytes | AESGCM, blob: bytes, associated: bytes) -> bytes:
    """Open a sealed value; ``key`` may be a prepared AESGCM, which bulk readers reuse."""
    if not blob or blob[0] != 1 or len(blob) < 1 + NONCE_BYTES + 16:
        raise DecryptionError("unrecognised ciphertext format")
    cipher = key if isinstance(key, AESGCM) else AESGCM(key)
    try:
        return cipher.decrypt(blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :], associated)
    except InvalidTag:
        raise DecryptionError("ciphertext does not open with this key") from None


@dataclass(frozen=True)
class WrappedKey:
    blob: bytes
    kek_id: str


class KeyRing:
    """Holds the current KEK (and optionally retired ones, to read rows not yet re-wrapped)."""

    def __init__(self, current: bytes, previous: tuple[bytes, ...] = ()) -> None:
        if len(current) != KEY_BYTES:
            raise MasterKeyError(f"master key must be {KEY_BYTES} bytes")
        self._current = current
        self._by_id = {key_id(k): k for k in (current, *previous)}

    @property
    def current_id(self) -> str:
        return key_id(self._current)

    def wrap(self, dek: bytes, subject: str) -> WrappedKey:
        return WrappedKey(seal(self._current, dek, _wrap_aad(subject)), self.current_id)

    def unwrap(self, wrapped: WrappedKey, subject: str) -> bytes:
        kek = self._by_id.get(wrapped.kek_id)
        if kek is None:
            raise MasterKeyError(
                "the master key does not match this database (data keys were wrapped by "
                f"key {wrapped.kek_id}, configured key is {self.current_id})"
            )
        try:
            return open_sealed(kek, wrapped.blob, _wrap_aad(subject))
        except DecryptionError:
            raise MasterKeyError(
                "a data key failed to unwrap: wrong master key or damaged row"
            ) from None


def _wrap_aad(subject: str) -> bytes:
    return f"mentorbot/v1|dek|{subject}".encode()


def keyed_hash(key: bytes, purpose: str, value: str) -> bytes:
    """HMAC-SHA256 used for lookups (Telegram ids, invite codes) and study pseudonyms."""
    return hmac.new(key, f"{purpose}|{value}".encode(), hashlib.sha256).digest()
