"""Encryption at rest for secrets the portal must be able to read back
(backend credentials), as opposed to secrets it only verifies (API keys, which
are hashed).

Keys come from ``ENCRYPTION_KEYS``: comma-separated Fernet keys, newest first,
so a key can be rotated by prepending a new one; older keys still decrypt. In
development, with none set, a key is derived from ``SECRET_KEY`` so the
embedded default works; production refuses to start without explicit keys.
"""

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


class DecryptionError(Exception):
    """A stored secret can no longer be read (its key was removed)."""


def derive_key(secret: str, *, purpose: bytes) -> bytes:
    """32 bytes for one purpose from a longer secret, so one SECRET_KEY can seed
    several keys without any of them revealing another."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret.encode()
    )


def _derived_key(secret: str) -> bytes:
    return base64.urlsafe_b64encode(derive_key(secret, purpose=b"portal-secrets"))


@functools.cache
def _fernet_for(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    materials = [k.encode() for k in keys] if keys else [_derived_key(secret_key)]
    return MultiFernet([Fernet(m) for m in materials])


def _fernet() -> MultiFernet:
    return _fernet_for(tuple(settings.ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("stored secret can't be decrypted with the configured keys") from None


def last4(secret: str) -> str:
    return secret[-4:] if len(secret) >= 8 else ""
