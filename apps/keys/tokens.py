"""The raw API key format, and how its secret is hashed.

``aip_<public_id>_<secret>``: a 12-character lowercase base32 public id and a
40-character secret of letters and digits. The fixed prefix and shape let
secret scanners recognise leaked keys (:data:`KEY_RE`).

Secrets are verified, never read back, so only an HMAC-SHA256 is stored. The
HMAC key is ``API_KEY_HMAC_SECRET`` or, when empty, one derived from
``SECRET_KEY`` with HKDF (like :mod:`apps.core.crypto`).
"""

import functools
import hashlib
import hmac
import re
import secrets
import string

from django.conf import settings

from apps.core.crypto import derive_key

PREFIX = "aip"
PUBLIC_ID_LENGTH = 12
SECRET_LENGTH = 40
_PUBLIC_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits

KEY_RE = re.compile(r"aip_([a-z2-7]{12})_([A-Za-z0-9]{40})")


def generate_public_id() -> str:
    return "".join(secrets.choice(_PUBLIC_ALPHABET) for _ in range(PUBLIC_ID_LENGTH))


def generate_secret() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(SECRET_LENGTH))


def format_key(public_id: str, secret: str) -> str:
    return f"{PREFIX}_{public_id}_{secret}"


def generate() -> tuple[str, str, str]:
    """A new ``(public_id, secret, raw)``."""
    public_id, secret = generate_public_id(), generate_secret()
    return public_id, secret, format_key(public_id, secret)


def parse(raw: str) -> tuple[str, str] | None:
    """``(public_id, secret)`` of a well-formed key, else None."""
    if not isinstance(raw, str):
        return None
    match = KEY_RE.fullmatch(raw.strip())
    if match is None:
        return None
    return match.group(1), match.group(2)


@functools.cache
def _hmac_key_for(configured: str, secret_key: str) -> bytes:
    if configured:
        return configured.encode()
    return derive_key(secret_key, purpose=b"portal-api-keys")


def hash_secret(secret: str) -> str:
    key = _hmac_key_for(settings.API_KEY_HMAC_SECRET, settings.SECRET_KEY)
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()
