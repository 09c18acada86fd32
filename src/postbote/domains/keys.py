"""DKIM key pairs: RSA-2048, generated here, private halves encrypted at rest.

The private key is stored as AES-256-GCM ciphertext under a key derived (HKDF-SHA256) from the
SECRET_KEY setting; it is decrypted only to sign, parsed once and kept in memory. Neither the
private key nor SECRET_KEY is ever logged or printed."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import ConfigError

KEY_BITS = 2048
_INFO = b"postbote dkim private key v1"
_SECRET_INFO = b"postbote stored secret v1"  # webhook signing secrets: another key, another purpose


@dataclass(frozen=True, slots=True)
class KeyPair:
    private_key: rsa.RSAPrivateKey
    public_b64: str  # what DKIM's p= carries: base64 of the DER SubjectPublicKeyInfo


def generate() -> KeyPair:
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    return KeyPair(private, public_b64(private.public_key()))


def public_b64(public_key: rsa.RSAPublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode("ascii")


MIN_SECRET_LENGTH = 24
_MAKE_ONE = ("Make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))' and put it in "
             "postbote.toml as SECRET_KEY or in POSTBOTE_SECRET_KEY ('postbote init' writes one into a new postbote.toml).")
_PLACEHOLDERS = ("changeme", "change-me", "secret", "password", "postbote", "example", "12345")


def require_secret_key(secret_key: str) -> None:
    """Refuse to run with no master key or one that can be guessed: it keys the DKIM private keys
    at rest and the MAC of every return path."""
    if not secret_key:
        raise ConfigError("SECRET_KEY is not set, so DKIM keys cannot be used and return paths cannot be made.",
                          hint=_MAKE_ONE, code="secret_key_missing")
    lowered = secret_key.lower()
    if (len(secret_key) < MIN_SECRET_LENGTH or len(set(secret_key)) < 10
            or any(lowered.strip("-_ ") == p or lowered.startswith(p * 2) for p in _PLACEHOLDERS)):
        raise ConfigError(f"SECRET_KEY is too weak: it needs at least {MIN_SECRET_LENGTH} characters, "
                          "10 of them different, and must not be a placeholder.", hint=_MAKE_ONE,
                          code="secret_key_weak")


class KeyVault:
    """Encrypts and decrypts private keys with the master key from settings."""

    def __init__(self, secret_key: str):
        require_secret_key(secret_key)
        kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO)
        self._aead = AESGCM(kdf.derive(secret_key.encode("utf-8")))
        secrets_kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SECRET_INFO)
        self._secrets = AESGCM(secrets_kdf.derive(secret_key.encode("utf-8")))
        self._parsed: dict[str, rsa.RSAPrivateKey] = {}

    def seal(self, private_key: rsa.RSAPrivateKey) -> str:
        der = private_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        nonce = os.urandom(12)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, der, _INFO)).decode("ascii")

    def open(self, sealed: str) -> rsa.RSAPrivateKey:
        key = self._parsed.get(sealed)
        if key is None:
            raw = base64.b64decode(sealed)
            try:
                der = self._aead.decrypt(raw[:12], raw[12:], _INFO)
            except InvalidTag:
                raise ConfigError(
                    "A stored DKIM key cannot be decrypted with this SECRET_KEY.",
                    hint="Use the SECRET_KEY the keys were created with.",
                ) from None
            key = serialization.load_der_private_key(der, password=None)
            self._parsed[sealed] = key
        return key

    def seal_secret(self, text: str) -> str:
        """A short secret (a webhook's signing secret) encrypted for the store."""
        nonce = os.urandom(12)
        return base64.b64encode(nonce + self._secrets.encrypt(nonce, text.encode("utf-8"), _SECRET_INFO)).decode("ascii")

    def open_secret(self, sealed: str) -> str:
        raw = base64.b64decode(sealed)
        try:
            return self._secrets.decrypt(raw[:12], raw[12:], _SECRET_INFO).decode("utf-8")
        except InvalidTag:
            raise ConfigError("A stored webhook secret cannot be decrypted with this SECRET_KEY.",
                              hint="Use the SECRET_KEY the secret was made with, or rotate the endpoint's secret.") from None
