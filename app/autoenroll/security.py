"""Passwords (scrypt) and access tokens (HS256 JWT with a `jti`, so one token can be revoked)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
import uuid
from dataclasses import dataclass

import jwt

TOKEN_TTL_S = 30 * 60
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str) -> bool:
    try:
        _scheme, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), **_SCRYPT)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


@dataclass(frozen=True)
class Claims:
    user_id: str
    tenant_id: str
    jti: str
    expires_at: int


def issue_token(secret: str, user_id: str, tenant_id: str, now: float | None = None) -> tuple[str, Claims]:
    issued = int(now or time.time())
    claims = Claims(user_id, tenant_id, uuid.uuid4().hex, issued + TOKEN_TTL_S)
    token = jwt.encode({"sub": user_id, "tid": tenant_id, "jti": claims.jti, "iat": issued,
                        "exp": claims.expires_at}, secret, algorithm="HS256")
    return token, claims


def read_token(secret: str, token: str) -> Claims | None:
    """The token's claims, or None if it is malformed, forged or expired."""
    try:
        data = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "jti", "sub", "tid"]})
    except jwt.PyJWTError:
        return None
    return Claims(str(data["sub"]), str(data["tid"]), str(data["jti"]), int(data["exp"]))
