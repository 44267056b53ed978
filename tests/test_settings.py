"""One frozen ``Settings`` per client: checked once, read by the core, never changed.

Every public setting of both clients is a read-only view of the one value the core
reads: assigning it raises (before, ``client.max_batch = 1`` was accepted and
ignored). A client with other settings is made from them whole
(``from_settings``). Each value is checked once, with an error naming the setting,
and kept as a plain value: a ``bool`` or an ``int`` subclass whose comparisons lie
never passes a bound check.
"""

from __future__ import annotations

import asyncio
import dataclasses
import pickle
import time
from datetime import timedelta, timezone
from typing import Any

import pytest

from hostile_types import OddFloat, OddInt
from hpgfast import AsyncClient, Client, Code, Message, MessageError, Settings
from hpgfast._base import INTERRUPT_GRACE
from hpgfast.core import Exchange, Reply
from hpgfast.emulator import Emulator
from transports import interrupt_soon

CLIENTS = (Client, AsyncClient)
URL = "http://127.0.0.1:1/CLIENT/connectorX/"
PASSWORD = "S3cret-pw"

#: A value of the right type for each setting, other than its default.
OTHER: dict[str, Any] = {
    "url": "http://127.0.0.1:2/CLIENT/other/",
    "login": "OTHER",
    "login_param": "user",
    "password_param": "pass",
    "timeout": 5.0,
    "connect_timeout": 2.0,
    "ca_certs": "/nonexistent.pem",
    "verify": False,
    "proxy": "http://127.0.0.1:3128",
    "trust_env": False,
    "max_request_bytes": 4096,
    "max_batch": 1,
    "concurrency": 4,
    "extra_params": (("priority", "high"),),
    "default_subject": "SHOP",
    "status_tz": timezone(timedelta(hours=3)),
    "quote_brackets": True,
    "retries": 0,
    "backoff": 1.0,
    "backoff_max": 2.0,
    "max_reply_bytes": 1024,
    "user_agent": "other",
    "subscribers": (),
    "account_stop_codes": frozenset({"error-account"}),
    "final_statuses": frozenset({"gone"}),
    "retry_on_429": False,
    "retry_after_max": 1.0,
    "stop_after_5xx": 5,
    "max_rate": 10.0,
    "request_deadline": 7.0,
    "client_ids": False,
    "transliterate": True,
}

PUBLIC = [f.name for f in dataclasses.fields(Settings) if f.init and f.name != "password"]


def test_every_public_setting_has_a_probe_value() -> None:
    assert sorted(OTHER) == sorted(PUBLIC)


@pytest.mark.parametrize("cls", CLIENTS, ids=lambda c: c.__name__)
def test_every_setting_is_read_only_and_reads_the_settings(cls: type[Any]) -> None:
    client = cls(URL, "CLIENT", PASSWORD, max_batch=3, request_deadline=None)
    try:
        settings = client.settings
        for name in PUBLIC:
            before = getattr(client, name)
            expected = settings.deadline if name == "request_deadline" else getattr(settings, name)
            assert before == expected, name
            with pytest.raises(AttributeError, match=f"{name} is read-only"):
                setattr(client, name, OTHER[name])
            with pytest.raises(AttributeError, match=f"{name} is read-only"):
                delattr(client, name)
            assert getattr(client, name) == before, name
            assert name not in vars(client), name
        with pytest.raises(AttributeError):
            client.settings = dataclasses.replace(settings, max_batch=1)  # type: ignore[misc]
        assert client.settings is settings
        assert not hasattr(client, "password")
    finally:
        client.close()


def test_the_deadline_is_ten_timeouts_unless_given() -> None:
    with Client(URL, "CLIENT", PASSWORD, timeout=2.0) as client:
        assert client.request_deadline == 20.0 and client.settings.request_deadline is None
    with Client(URL, "CLIENT", PASSWORD, timeout=2.0, request_deadline=3) as client:
        assert client.request_deadline == 3.0


def three() -> list[Message]:
    return [Message(f"7903000000{i}", f"text {i}", "SHOP") for i in range(3)]


@pytest.mark.parametrize("cls", CLIENTS, ids=lambda c: c.__name__)
def test_max_batch_set_on_a_client_refuses_and_from_settings_takes_effect(cls: type[Any]) -> None:
    with Emulator() as emu:
        client = cls(emu.url, emu.login, emu.password)
        with pytest.raises(AttributeError, match="max_batch is read-only"):
            client.max_batch = 1
        one_each = cls.from_settings(dataclasses.replace(client.settings, max_batch=1))
        assert one_each.max_batch == 1 and client.max_batch is None
        for used in (client, one_each):
            before = emu.requests["send"]
            if cls is Client:
                results = used.send(three())
                used.close()
            else:

                async def run(used: Any = used) -> Any:
                    async with used:
                        return await used.send(three())

                results = asyncio.run(run())
            assert [r.code for r in results] == [Code.OK] * 3
            sent = emu.requests["send"] - before
            assert sent == (1 if used is client else 3)


@pytest.mark.parametrize("cls", CLIENTS, ids=lambda c: c.__name__)
def test_from_settings_takes_a_settings_value_only(cls: type[Any]) -> None:
    with pytest.raises(TypeError, match=r"settings must be a hpgfast\.Settings"):
        cls.from_settings({"url": URL})
    settings = Settings(URL, "CLIENT", PASSWORD, concurrency=2)
    client = cls.from_settings(settings)
    try:
        assert client.settings is settings and client.concurrency == 2
        assert repr(client).startswith(f"<hpgfast.{cls.__name__} ")
    finally:
        client.close()


# -- the checks: once, in Settings, for both clients ---------------------------------------

INTS = ("max_request_bytes", "max_batch", "concurrency", "retries", "max_reply_bytes",
        "stop_after_5xx")
FLOATS = ("timeout", "connect_timeout", "backoff", "backoff_max", "retry_after_max",
          "max_rate", "request_deadline")
FLAGS = ("verify", "quote_brackets", "retry_on_429", "client_ids", "transliterate")


def make(maker: Any, **settings: Any) -> Any:
    made = maker(URL, "CLIENT", PASSWORD, **settings)
    if not isinstance(made, Settings):
        made.close()
    return made


MAKERS = (Settings, Client, AsyncClient)


@pytest.mark.parametrize("maker", MAKERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", INTS)
def test_a_count_must_be_a_plain_int(maker: Any, name: str) -> None:
    with pytest.raises(TypeError, match=f"^{name} must be an int, got a bool$"):
        make(maker, **{name: True})
    with pytest.raises(TypeError, match=f"^{name} must be an int, got float$"):
        make(maker, **{name: 2.0})
    with pytest.raises(TypeError, match=f"^{name} must be an int, got str$"):
        make(maker, **{name: "3"})
    # Compared as the plain int it is: its lying comparisons are never asked.
    with pytest.raises(ValueError, match=f"^{name} must be at least [01], got -1$"):
        make(maker, **{name: OddInt(-1)})


@pytest.mark.parametrize("name", INTS)
def test_a_count_is_kept_as_an_exact_int(name: str) -> None:
    value = getattr(Settings(URL, "CLIENT", PASSWORD, **{name: OddInt(4096)}), name)
    assert type(value) is int and value == 4096


@pytest.mark.parametrize("maker", MAKERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", FLOATS)
def test_seconds_must_be_a_finite_plain_number(maker: Any, name: str) -> None:
    with pytest.raises(TypeError, match=f"^{name} must be a number, got bool$"):
        make(maker, **{name: True})
    with pytest.raises(TypeError, match=f"^{name} must be a number, got str$"):
        make(maker, **{name: "1"})
    for bad in (-1.0, float("nan"), float("inf"), OddFloat(-1.0)):
        with pytest.raises(ValueError, match=f"^{name} must be a finite"):
            make(maker, **{name: bad})
    value = getattr(Settings(URL, "CLIENT", PASSWORD, **{name: OddFloat(3.0)}), name)
    assert type(value) is float and value == 3.0


@pytest.mark.parametrize("name", ("timeout", "connect_timeout", "max_rate", "request_deadline"))
def test_these_seconds_must_be_positive(name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name} must be a finite positive number, got 0.0$"):
        Settings(URL, "CLIENT", PASSWORD, **{name: 0})


@pytest.mark.parametrize("maker", MAKERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", FLAGS)
def test_a_flag_must_be_a_bool(maker: Any, name: str) -> None:
    with pytest.raises(TypeError, match=f"^{name} must be True or False, got int$"):
        make(maker, **{name: 1})


@pytest.mark.parametrize("maker", MAKERS, ids=lambda c: c.__name__)
def test_text_and_other_settings_name_themselves(maker: Any) -> None:
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"login_param": 1}, TypeError, "login_param must be a str, got int"),
        ({"user_agent": "a\r\nX-Evil: 1"}, ValueError, "user_agent holds control characters"),
        ({"default_subject": b"x"}, TypeError, "default_subject must be a str, got bytes"),
        ({"status_tz": "UTC"}, TypeError, "status_tz must be a tzinfo, got str"),
        ({"ca_certs": 3}, TypeError, "ca_certs must be a path, got int"),
        ({"final_statuses": "delivered"}, TypeError, "final_statuses must be a collection"),
        ({"account_stop_codes": [1]}, TypeError, "account_stop_codes must be a str, got int"),
        ({"subscribers": None}, TypeError, "subscribers must be a sequence, got NoneType"),
        ({"extra_params": {"a": 1}}, MessageError, "params"),
    ]
    for settings, error, text in cases:
        with pytest.raises(error, match=text):
            make(maker, **settings)
    with pytest.raises(TypeError, match=r"^password must be a str, got bytes$"):
        maker(URL, "CLIENT", PASSWORD.encode())
    with pytest.raises(ValueError, match="url must be an http"):
        maker("ftp://example.com/", "CLIENT", PASSWORD)


def test_settings_are_plain_frozen_and_keep_the_password_hidden() -> None:
    settings = Settings(
        "http://127.0.0.1:1/C/x",
        "CLIENT",
        PASSWORD,
        extra_params={"priority": "high"},
        final_statuses=["Delivered", "GONE"],
        account_stop_codes=["error-account"],
        subscribers=[],
    )
    assert settings.url == "http://127.0.0.1:1/C/x/"
    assert settings.extra_params == (("priority", "high"),)
    assert settings.final_statuses == frozenset({"delivered", "gone"})
    assert settings.account_stop_codes == frozenset({"error-account"})
    assert settings.subscribers == ()
    assert PASSWORD not in repr(settings) and "password=" not in repr(settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.max_batch = 1  # type: ignore[misc]
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(settings)
    # replace() checks again, and what Settings kept is a valid input.
    assert dataclasses.replace(settings) == settings
    with pytest.raises(ValueError, match="max_batch must be at least 1, got 0"):
        dataclasses.replace(settings, max_batch=0)


def test_the_core_reads_the_settings_and_takes_no_setting_of_its_own() -> None:
    settings = Settings(URL, "CLIENT", PASSWORD, max_batch=1, client_ids=False)
    exchange = Exchange(settings)
    assert exchange.settings is settings
    with pytest.raises(AttributeError):
        exchange.max_batch = 3  # type: ignore[attr-defined]
    batch = exchange.batch("send", three(), None)
    assert [(r.start, r.end) for r in batch.requests] == [(0, 1), (1, 2), (2, 3)]


# -- one way to stop a batch -----------------------------------------------------------------


def test_a_sealed_batch_cuts_what_is_on_the_wire_and_changes_no_more() -> None:
    batch = Exchange(Settings(URL, "CLIENT", PASSWORD, max_batch=1, client_ids=False)).batch(
        "send", three(), None
    )
    first = batch.next(0.0)
    assert first is not None and batch.begin_line(first, 0.0)
    interrupt = KeyboardInterrupt()
    batch.stop(interrupt)
    assert batch.stopped and batch.next(0.0) is None
    batch.seal(interrupt, [first])
    # A reply after the seal changes nothing the caller was given.
    batch.report(first, Reply(200, b"ok;0;2001\n"), 1.0)
    with pytest.raises(KeyboardInterrupt) as info:
        batch.finish()
    codes = [r.code for r in info.value.results]  # type: ignore[attr-defined]
    assert codes == [Code.UNKNOWN, Code.NOT_SENT, Code.NOT_SENT]


@pytest.mark.usefixtures("transport")  # ``Client`` is either client here
def test_an_interrupt_at_concurrency_4_gives_the_wire_one_grace_in_both_clients() -> None:
    # Before, the async client cut its tasks after the grace, and each cut task
    # then waited a grace of its own: twice INTERRUPT_GRACE in all.
    four = [Message(f"7903000000{i}", f"text {i}", "SHOP") for i in range(4)]
    with Emulator(latency=INTERRUPT_GRACE + 2) as emu:
        with Client(emu.url, emu.login, emu.password, max_batch=1, concurrency=4) as client:
            thread = interrupt_soon(client, 0.5)
            started = time.monotonic()
            try:
                with pytest.raises(KeyboardInterrupt) as info:
                    client.send(four)
            finally:
                thread.join()
            took = time.monotonic() - started - 0.5
            results = info.value.results  # type: ignore[attr-defined]
            assert [r.code for r in results] == [Code.UNKNOWN] * 4
            assert INTERRUPT_GRACE - 0.2 < took < INTERRUPT_GRACE + 1.0
