import pytest
from cryptography.fernet import Fernet

from apps.core import crypto


def test_round_trip_and_ciphertext_hides_the_secret():
    token = crypto.encrypt("sk-very-secret-value")
    assert "sk-very-secret-value" not in token
    assert crypto.decrypt(token) == "sk-very-secret-value"


def test_key_rotation_keeps_old_secrets_readable(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old]
    token = crypto.encrypt("rotate-me")
    settings.ENCRYPTION_KEYS = [new, old]
    assert crypto.decrypt(token) == "rotate-me"
    settings.ENCRYPTION_KEYS = [new]
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token)


def test_last4_only_for_keys_long_enough_to_not_give_them_away():
    assert crypto.last4("sk-abcdefgh1234") == "1234"
    assert crypto.last4("short") == ""
