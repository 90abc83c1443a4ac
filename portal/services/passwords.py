"""Password hashing with Argon2id (memory-hard), and the rules a new password meets."""
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

MIN_LENGTH = 12
# A well-formed hash to verify against when the account does not exist, so that the
# time taken does not tell whether the email is known.
_DUMMY = {}


def _hasher():
    cfg = current_app.config
    return PasswordHasher(time_cost=cfg["ARGON2_TIME_COST"], memory_cost=cfg["ARGON2_MEMORY_COST"])


def hash_password(password):
    return _hasher().hash(password)


def verify_password(password_hash, password):
    """Whether `password` matches `password_hash`. With no hash (no such account, or one
    that has not set a password yet) the same verification runs against a hash made once
    per cost setting, so that every refusal costs the same time (one verify, no hashing)."""
    hasher = _hasher()
    if not password_hash:
        key = (hasher.time_cost, hasher.memory_cost)
        if key not in _DUMMY:
            _DUMMY[key] = hasher.hash("not-a-password")
        password_hash = _DUMMY[key]
        password = password + "\x00mismatch"
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password, email=""):
    """Why `password` is too weak, or None."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(set(password)) < 5:
        return "Use more different characters."
    if email and email.split("@")[0].lower() in password.lower():
        return "Do not use your email address in the password."
    if password.lower() in {"passwordpassword", "password1234", "123456789012", "qwertyuiopas"}:
        return "That password is too common."
    return None
