"""Gemini key text at rest: Fernet with a key derived from SECRET_KEY exactly as
docs/CONTRACTS.md ("Key pool v2") says, so the worker can decrypt what the backend stores."""

import base64
import hashlib

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HKDF_INFO = b"gemini-chat/key-pool/v1"


def fernet(secret_key: str) -> Fernet:
    derived = HKDF(algorithm=SHA256(), length=32, salt=None, info=HKDF_INFO).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def key_id(key: str) -> str:
    """The name every service knows a key by: never the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def key_label(key: str) -> str:
    """The worker's default label (`…abcd`): the last four characters only of a long key."""
    return "…" + key[-4:] if len(key) >= 12 else "…"
