"""An API client for the app running in the test sandbox (through Caddy, as users reach it)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from ops.sandbox.state import SandboxState


@dataclass
class Account:
    client: httpx.Client
    email: str
    password: str
    tenant_id: str
    user_id: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def sign_up(client: httpx.Client, company: str = "Acme Payroll Ltd") -> Account:
    email, password = f"owner-{uuid.uuid4().hex[:10]}@example.ie", "correct horse battery staple"
    created = client.post("/api/signup", json={"company": company, "email": email, "full_name": "Úna Owner",
                                                "password": password})
    assert created.status_code == 201, created.text
    login = client.post("/api/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    return Account(client, email, password, created.json()["tenant_id"], created.json()["user_id"],
                   login.json()["token"])


@pytest.fixture()
def api(sandbox: SandboxState) -> Iterator[httpx.Client]:
    import redis

    # Rate-limit windows from earlier tests (same client IP) must not leak into this one.
    client_redis = redis.Redis.from_url(sandbox.redis_url())
    for key in client_redis.scan_iter("rate:*"):
        client_redis.delete(key)
    with httpx.Client(base_url=sandbox.public_url(), timeout=15) as client:
        yield client


@pytest.fixture()
def account(api: httpx.Client) -> Account:
    return sign_up(api)
