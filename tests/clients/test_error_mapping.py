"""The client layer's errors, and how each program maps them at its boundary: a 404, 429, 5xx or
refused connection is the right `clients.errors` class, the right `ops.errors` class (exit code,
status, request id) from the ops-side clients and the CLI's guard, and the right `stacks.errors`
class from a dynamic provider (a failing `pulumi up` never shows an ops exception). The most
specific entry of a mapping wins, whatever its order."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
import typer

from clients import errors as ce
from clients.neon_api import NeonClient
from ops.adapters.cloud import clients as ops_clients
from ops.adapters.cloud.client_errors import MAPPING, client_errors, to_ops_error
from ops.errors import ConfigError, OpsError, ProviderAPIError
from stacks import errors as se
from stacks.providers import neon as neon_provider

pytestmark = pytest.mark.unit

Answer = Callable[[httpx.Request], httpx.Response]


def status(code: int) -> Answer:
    return lambda _r: httpx.Response(code, json={"message": f"said {code}"}, headers={"x-request-id": "req-7"})


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("Connection refused", request=request)


CASES: list[tuple[str, Answer, type[ce.ClientError], int | None]] = [
    ("404", status(404), ce.NotFound, 404),
    ("429", status(429), ce.RateLimited, 429),
    ("503", status(503), ce.ServerError, 503),
    ("401", status(401), ce.AuthError, 401),
    ("423", status(423), ce.Conflict, 423),
    ("400", status(400), ce.ClientHTTPError, 400),
    ("refused", refused, ce.ClientConnectError, None),
]


def _client(cls: type[NeonClient], answer: Answer) -> NeonClient:
    return cls("key", transport=httpx.MockTransport(answer), sleep=lambda _s: None, max_attempts=2)


@pytest.mark.parametrize("answer, expected, code", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_failure_is_its_client_error_class(answer: Answer, expected: type[ce.ClientError],
                                                code: int | None) -> None:
    with pytest.raises(ce.ClientError) as raised:
        _client(NeonClient, answer).list_branches("p-1")
    assert type(raised.value) is expected
    assert raised.value.status == code
    assert not isinstance(raised.value, OpsError)


@pytest.mark.parametrize("answer, expected, code", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_ops_sees_a_provider_api_error_with_the_status_and_request_id(answer: Answer, expected: type[ce.ClientError],
                                                                       code: int | None) -> None:
    with pytest.raises(OpsError) as raised:
        _client(ops_clients.NeonClient, answer).list_branches("p-1")
    assert type(raised.value) is ProviderAPIError and raised.value.exit_code == 7
    assert raised.value.status == code
    if code is not None:
        assert raised.value.request_id == "req-7"
        assert str(raised.value).endswith(f"(HTTP {code}, request id req-7)")  # the suffix once, not twice


def test_a_missing_credential_is_a_config_error_in_ops_and_in_stacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEON_API_KEY", raising=False)
    with pytest.raises(ce.ClientConfigError, match="NEON_API_KEY"):
        NeonClient.from_environ()
    with pytest.raises(ConfigError, match="NEON_API_KEY") as raised:
        ops_clients.NeonClient.from_environ()
    assert raised.value.exit_code == 2
    monkeypatch.setattr(neon_provider, "client_factory", neon_provider.NeonClient.from_environ)
    with pytest.raises(se.StackConfigError, match="NEON_API_KEY"):
        neon_provider.NeonProjectProvider().read("p-1", {})


def test_a_client_that_catches_its_own_404_still_does_behind_the_ops_mapping() -> None:
    """get_or_none's 404 is None (a gone resource), from the ops-side client too: the mapping wraps
    only what ops calls, not the client's own calls."""
    assert _client(ops_clients.NeonClient, status(404)).get_branch("p-1", "br-gone") is None
    with pytest.raises(ProviderAPIError):
        _client(ops_clients.NeonClient, status(500)).get_branch("p-1", "br-1")


@pytest.mark.parametrize("answer, expected, code", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_failing_provider_raises_a_stacks_error_never_an_ops_one(monkeypatch: pytest.MonkeyPatch, answer: Answer,
                                                                   expected: type[ce.ClientError],
                                                                   code: int | None) -> None:
    # `neon_provider.NeonClient`: the class the provider module itself uses, whichever layer it comes from.
    monkeypatch.setattr(neon_provider, "client_factory", lambda: _client(neon_provider.NeonClient, answer))
    with pytest.raises(Exception) as raised:  # the class is what is checked, below
        neon_provider.NeonDatabaseProvider().read("br-1/autoenroll", {
            "project_id": "p-1", "branch_id": "br-1", "database": "autoenroll", "role": "autoenroll_app",
            "owner_role": "autoenroll_owner", "app_password": "pw"})
    assert type(raised.value).__module__ == "stacks.errors", type(raised.value)
    assert type(raised.value).__name__ == "ProviderAPIFailure"
    assert getattr(raised.value, "status", None) == code


def test_the_most_specific_entry_wins_whatever_the_order() -> None:
    def named(label: str) -> Callable[[ce.ClientError], OpsError]:
        return lambda exc: OpsError(label)

    general_first: dict[type[ce.ClientError], Callable[[ce.ClientError], OpsError]] = {
        ce.ClientError: named("any"), ce.ClientHTTPError: named("http"), ce.NotFound: named("404")}
    assert str(to_ops_error(ce.NotFound("x", status=404), general_first)) == "404"
    assert str(to_ops_error(ce.RateLimited("x", status=429), general_first)) == "http"
    assert str(to_ops_error(ce.OutcomeUnknown("x"), general_first)) == "any"
    # ops's own table lists ClientError before ClientConfigError: the config error still wins.
    assert next(iter(MAPPING)) is ce.ClientError
    assert type(to_ops_error(ce.ClientConfigError("X_TOKEN: not set"))) is ConfigError
    assert type(se.to_stack_error(ce.ClientConfigError("X_TOKEN: not set"))) is se.StackConfigError
    assert type(se.to_stack_error(ce.NotFound("gone", status=404))) is se.ProviderAPIFailure


def test_the_mapping_passes_other_exceptions_through() -> None:
    with pytest.raises(KeyError), client_errors():
        raise KeyError("x")
    with pytest.raises(ConfigError), client_errors():
        raise ConfigError("already ops's")


def test_the_cli_guard_maps_a_client_error_that_reached_it(capsys: pytest.CaptureFixture[str]) -> None:
    from ops.cli.base import _guard

    def command() -> None:
        raise ce.ClientConfigError("STRIPE_API_KEY: required to call the Stripe API but not set")

    with pytest.raises(typer.Exit) as raised:
        _guard(command)()
    assert raised.value.exit_code == 2
    assert "STRIPE_API_KEY: required" in capsys.readouterr().err
