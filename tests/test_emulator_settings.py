"""The emulator's settings: one frozen ``EmulatorSettings`` value, checked once.

Every keyword of ``Emulator`` is a field of it; bad values name their setting; the
emulator reads from it, and a test below says, for every public setting, what
assigning its attribute does.
"""

from __future__ import annotations

import dataclasses
import http.client
from typing import Any

import pytest

from hpgfast.emulator import LIVE_SETTINGS, Emulator, EmulatorSettings, Fault, Faults

SEND = "send?login=CLIENT&password=P%40ssw0rd&subject=SUBJ&address=79031111110&text=hi"
#: Settings that are state once running: the attribute is not the setting.
STATE = {"balance", "faults", "port"}
FIELDS = [f.name for f in dataclasses.fields(EmulatorSettings)]
#: The keywords Emulator took before they became one value, in their order.
KEYWORDS = [
    "host", "port", "client", "connector", "login", "password", "login_param",
    "password_param", "max_request_line", "reply_order", "date_style", "allow_addresses",
    "deny_addresses", "allow_subjects", "deny_subjects", "system_error_addresses",
    "subject_max_length", "speed", "sent_after", "final_after", "delayed_for",
    "first_provider_id", "latency", "certfile", "keyfile", "ssl_context", "seed", "faults",
    "push_url", "push_secret", "push_shape", "push_batch", "push_interval", "push_attempts",
    "balance", "account_state", "rate_limit", "rate_burst", "retry_after", "status_case",
    "field_statuses", "semicolon_reasons", "reasons", "send_extra", "client_ids",
    "max_client_id_length", "unique_client_ids", "reply_encoding", "reject_description",
    "text_charset", "content_type",
]


def fetch(emu: Emulator, target: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(emu.host, emu.port, timeout=10)
    try:
        conn.request("GET", emu.url.split(str(emu.port), 1)[1] + target)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def get(emu: Emulator, target: str) -> bytes:
    status, body = fetch(emu, target)
    assert status == 200, body
    return body


def test_every_keyword_is_a_setting_and_the_keywords_build_one_value() -> None:
    assert FIELDS == KEYWORDS
    with Emulator(speed=None, reply_order="shuffled", deny_addresses=["1"], balance=3) as emu:
        assert emu.settings == EmulatorSettings(
            speed=None, reply_order="shuffled", deny_addresses=frozenset({"1"}), balance=3
        )
        assert emu.settings.deny_addresses == frozenset({"1"})  # stored frozen
        with pytest.raises(dataclasses.FrozenInstanceError):
            emu.settings.latency = 1.0  # type: ignore[misc]
        with pytest.raises(TypeError):
            emu.settings.reasons["6"] = "x"  # type: ignore[index]
        assert hash(emu.settings) == hash(dataclasses.replace(emu.settings))


def test_a_settings_value_given_whole() -> None:
    settings = EmulatorSettings(speed=None, send_extra="2", client="C2", connector="k")
    with Emulator(settings=settings) as emu:
        assert emu.settings is settings
        assert emu.url.endswith("/C2/k/")
        assert get(emu, SEND) == b"ok;0;1001;2\n"
    with pytest.raises(TypeError, match="not both"):
        Emulator(settings=settings, latency=1.0)
    with pytest.raises(TypeError, match="EmulatorSettings"):
        Emulator(settings={"latency": 1.0})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="nope"):
        Emulator(nope=1)


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("port", "80", TypeError),
        ("port", 70000, ValueError),
        ("speed", "fast", TypeError),
        ("latency", -1, ValueError),
        ("latency", True, TypeError),
        ("push_batch", 1.5, TypeError),
        ("push_batch", 0, ValueError),
        ("push_attempts", 0, ValueError),
        ("push_interval", 0, ValueError),
        ("field_statuses", 1, TypeError),
        ("deny_addresses", "79031111110", TypeError),
        ("allow_subjects", [1], TypeError),
        ("reply_order", "random", ValueError),
        ("date_style", "slashes", ValueError),
        ("status_case", "title", ValueError),
        ("client_ids", "drop", ValueError),
        ("delayed_for", -1, ValueError),
        ("subject_max_length", 0, ValueError),
        ("retry_after", 1.5, TypeError),
        ("balance", -1, ValueError),
        ("balance", "3", TypeError),
        ("rate_burst", 0.5, ValueError),
        ("keyfile", "key.pem", ValueError),
        ("faults", 3, TypeError),
        ("reasons", ["6"], TypeError),
        ("max_client_id_length", 0, ValueError),
    ],
)
def test_a_bad_setting_is_named(name: str, value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match=name):
        EmulatorSettings(**{name: value})
    with pytest.raises(error, match=name):
        Emulator(**{name: value})


def test_secrets_stay_out_of_reprs_and_errors() -> None:
    settings = EmulatorSettings(password="pw-SECRET-1", push_secret="ps-SECRET-2")
    assert "SECRET" not in repr(settings)
    with pytest.raises(ValueError, match="push_secret") as info:
        EmulatorSettings(push_secret="bad\nSECRET-3")
    assert "SECRET" not in str(info.value)
    with pytest.raises(TypeError, match="password") as type_info:
        EmulatorSettings(password=b"SECRET-4")  # type: ignore[arg-type]
    assert "SECRET" not in str(type_info.value)


@pytest.mark.parametrize("name", sorted(set(FIELDS) - LIVE_SETTINGS - STATE))
def test_a_fixed_setting_cannot_be_assigned(name: str) -> None:
    with Emulator(speed=None) as emu:
        before = emu.settings
        assert getattr(emu, name) == getattr(before, name)
        with pytest.raises(AttributeError, match=f"{name} is fixed"):
            setattr(emu, name, getattr(before, name))
        assert emu.settings is before


def test_live_settings_take_effect_on_the_next_request() -> None:
    assert LIVE_SETTINGS == {"account_state", "login", "password", "push_secret"}
    with Emulator(speed=None) as emu:
        emu.account_state = "error-account-locked"
        assert emu.settings.account_state == "error-account-locked"
        assert get(emu, SEND) == b"error-account-locked\n"
        with pytest.raises(ValueError, match="account_state"):
            emu.account_state = "error;locked"
        assert emu.account_state == "error-account-locked"  # a bad value changes nothing
        emu.account_state = None
        assert get(emu, SEND) == b"ok;0;1001\n"
        emu.password = "changed"  # the credentials, as a platform's operator may
        assert get(emu, SEND) == b"error-auth\n"
        emu.login = "OTHER"
        assert get(emu, SEND.replace("CLIENT", "OTHER").replace("P%40ssw0rd", "changed")) == (
            b"ok;0;1002\n"
        )
        assert (emu.settings.login, emu.settings.password) == ("OTHER", "changed")
        emu.push_secret = "s3cret"
        assert emu.settings.push_secret == emu.push_secret == "s3cret"
        with pytest.raises(ValueError, match="push_secret"):
            emu.push_secret = ""
        assert emu.push_secret == "s3cret"
    # (A push_secret assigned while pushing is used from the next attempt on:
    # test_emulator_push.py::test_wrong_secret_is_retried_until_fixed.)


def test_state_that_starts_from_a_setting() -> None:
    with Emulator(speed=None, balance=1, port=0, faults={"http_500": {1}}) as emu:
        # balance: what is left; a top-up changes it, not the setting.
        assert fetch(emu, SEND)[0] == 500
        emu.balance = 5
        assert emu.balance == 5 and emu.settings.balance == 1
        # faults: the Faults struck with; assigning one takes effect.
        assert emu.settings.faults["http_500"] == Fault(schedule=frozenset({1}))
        emu.faults = {"code_only": Fault(schedule={2}, code="error-system")}
        assert isinstance(emu.faults, Faults) and not emu.faults.http_500.active
        assert get(emu, SEND) == b"error-system\n"
        assert emu.settings.faults["http_500"].active  # the setting is the start
        # port: the port bound.
        assert emu.port > 0 and emu.settings.port == 0
        with pytest.raises(AttributeError):
            emu.port = 1  # type: ignore[misc]
    given = Faults(http_500={1})
    with Emulator(speed=None, faults=given) as emu:
        assert emu.faults is given  # a Faults given stays the emulator's own
