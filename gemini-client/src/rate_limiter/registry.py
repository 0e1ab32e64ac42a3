"""The keys admins add in the admin page, read from Redis (docs/CONTRACTS.md, "Key pool v2").

The backend writes each key's text as a Fernet token in `P keys:registry`, removed keys in
`P keys:removed`, and bumps `P keys:registry:version` on every change; the worker polls the
version and reloads. The key text exists decrypted only in this process's memory.
"""

import base64
import json

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from redis.asyncio import Redis

from ..core.logging import log
from .key_pool import key_id


def fernet_for(secret_key: str) -> Fernet:
    """The Fernet key both services derive from SECRET_KEY (docs/CONTRACTS.md)."""
    derived = HKDF(
        algorithm=SHA256(), length=32, salt=None, info=b"gemini-chat/key-pool/v1"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


class KeyRegistry:
    def __init__(self, redis: Redis, prefix: str, secret_key: str, env_keys: list[str]) -> None:
        self._redis = redis
        self._prefix = prefix
        self._fernet = fernet_for(secret_key)
        self._env = {key_id(k): k for k in env_keys}
        self._version: bytes | None = None
        self._unreadable: set[str] = set()  # logged once each

    async def changed(self) -> bool:
        """True when the backend changed the registry since the last load (one GET)."""
        return await self._redis.get(f"{self._prefix}keys:registry:version") != self._version

    async def load(self) -> dict[str, str]:
        """key id -> key text: the env keys and the registry's, less the removed ones."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(f"{self._prefix}keys:registry:version")
            pipe.hgetall(f"{self._prefix}keys:registry")
            pipe.smembers(f"{self._prefix}keys:removed")
            version, entries, removed = await pipe.execute()
        keys = dict(self._env)
        for raw_id, raw in entries.items():
            kid = raw_id.decode()
            text = self._decrypt(kid, raw)
            if text is not None:
                keys[kid] = text
        self._version = version
        gone = {r.decode() for r in removed}
        return {kid: text for kid, text in keys.items() if kid not in gone}

    def _decrypt(self, kid: str, raw: bytes) -> str | None:
        try:
            text = self._fernet.decrypt(json.loads(raw)["token"].encode()).decode()
        except (InvalidToken, ValueError, KeyError, TypeError, AttributeError):
            text = None
        if text is None or key_id(text) != kid:
            if kid not in self._unreadable:
                self._unreadable.add(kid)
                # Another SECRET_KEY than the backend's, most often.
                log.error("registry_key_unreadable", extra={"key_id": kid})
            return None
        return text
