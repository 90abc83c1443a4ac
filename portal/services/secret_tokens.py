"""Single-use and bearer secrets (set-password links, impersonation handoffs, API tokens):
made here, and kept only as their SHA-256, so a database dump holds no usable secret."""
import hashlib
import secrets


def new_secret():
    """A fresh random secret, URL-safe (256 bits)."""
    return secrets.token_urlsafe(32)


def digest(secret):
    """What is stored of `secret`: its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()
