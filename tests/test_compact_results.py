"""``send(..., compact=True)``: the list's very results, in a few bytes per message.

Over real HTTP with both clients (the ``transport`` fixture): every outcome kind
(``ok``, a rejection, ``unknown``, ``not-sent``), odd provider ids, the ids
hpgfast made, a stop's ``.results``. Then the sequence itself, and what it holds
in memory (tracemalloc, the core driven without a socket).
"""

from __future__ import annotations

import gc
import pickle
import subprocess
import sys
import tracemalloc
from collections.abc import Sequence
from typing import Any

import pytest

from hpgfast import (
    AccountError,
    Client,
    Code,
    CompactResults,
    Message,
    SendFailure,
    SendResult,
    results_of,
)
from hpgfast._bench import (
    LOGIN,
    PASSWORD,
    EmulatorProcess,
    core_exchange,
    core_send,
    results_memory,
)
from hpgfast.core import SEND, STATUS, Batch, RequestFinished, Subscriber
from hpgfast.emulator import Emulator, Fault
from hpgfast.exceptions import TransportError
from ledger_checks import assert_truthful
from transports import interrupt_soon

PER_REQUEST = 5

#: Request 3's reply, said by the platform: provider ids of every form, an extra
#: field, a rejection with a description. Its messages have ids of their own.
ODD_REPLY = (
    "ok;own-a;000123\n"  # leading zeros: kept
    "ok;own-b;AB-77\n"  # not digits
    "ok;own-c;18446744073709551616\n"  # 20 digits: more than 64 bits
    "ok;own-d;9999999999999999999;2\n"  # 19 digits and an extra field
    "ok;own-e;\uff11\uff12\n"  # digits, but not ASCII ones
    "error-address-unknown;own-f;;no such address\n"
    "ok;own-g;0\n"
    "ok;own-h;0000000000000000000\n"
).encode()


def mixed() -> list[Message]:
    """Eight requests of ``PER_REQUEST`` (the last short) of every outcome kind."""
    good = [Message(f"7903{i:07d}", f"text #{i}", "Shop") for i in range(40)]
    # Request 1: accepted, two own ids (one all digits), two rejected by the platform.
    good[1] = good[1]._replace(client_id="own-1")
    good[2] = good[2]._replace(client_id="0042")
    good[3] = good[3]._replace(address="79")  # error-address-format
    good[4] = good[4]._replace(address="79990000000")  # error-system (below)
    # Request 3 (ODD_REPLY): ids of their own; 8 messages, so max_batch=8 there.
    for k, i in enumerate(range(10, 18)):
        good[i] = good[i]._replace(client_id=f"own-{'abcdefgh'[k]}")
    return good


def client_for(emu: Emulator, **kw: Any) -> Client:
    return Client(emu.url, emu.login, emu.password, default_subject="Shop", backoff=0.01, **kw)


def sent_mixed(emu: Emulator, *, compact: bool, stop: bool = False) -> Any:
    """``mixed()`` sent one request at a time: request 2's reply is cut (unknown),
    request 3 is ``ODD_REPLY``; with ``stop``, request 5 meets an account stop
    (the rest ``not-sent``). The results, or the stop's ``.results``."""
    emu.faults.cut_reply = {2}
    emu.faults.raw_reply = Fault(schedule={3}, body=ODD_REPLY)
    if stop:
        emu.faults.code_only = Fault(schedule={5}, code="error-insufficient-balance")
    messages = mixed()
    # Cut where the requests above begin: 0-4, 5-9, 10-17 (ODD_REPLY), then by 5.
    with client_for(emu, client_ids=False, max_batch=PER_REQUEST) as client:
        head = client.send(messages[:10], compact=compact)
    with client_for(emu, client_ids=False, max_batch=8) as client:
        odd = client.send(messages[10:18], compact=compact)
    with client_for(emu, client_ids=False, max_batch=PER_REQUEST) as client:
        if not stop:
            return [*head, *odd, *client.send(messages[18:], compact=compact)], None
        with pytest.raises(AccountError) as info:
            client.send(messages[18:], compact=compact)
        return [*head, *odd], info.value


def same_records(got: Sequence[Any], want: Sequence[Any]) -> None:
    """Equal record by record, of the same classes, failures with errors alike."""
    assert got == want and want == got and not (got != want)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert type(g) is type(w), (g, w)
        assert tuple(g) == tuple(w)
        assert (g.provider_id, g.client_id, g.extra, g.raw) == (
            w.provider_id, w.client_id, w.extra, w.raw
        )
        if type(w) is SendFailure:
            assert type(g.error) is type(w.error)


@pytest.mark.usefixtures("transport")
@pytest.mark.parametrize("stop", [False, True], ids=["whole", "stopped"])
def test_compact_results_equal_the_list_for_every_outcome(stop: bool) -> None:
    settings = {"speed": None, "system_error_addresses": {"79990000000"}}
    with Emulator(**settings) as plain_emu, Emulator(**settings) as compact_emu:
        plain, plain_stop = sent_mixed(plain_emu, compact=False, stop=stop)
        compact, compact_stop = sent_mixed(compact_emu, compact=True, stop=stop)
        password = compact_emu.password
    same_records(compact, plain)
    codes = [r.code for r in compact]
    assert codes[:5] == [Code.OK, Code.OK, Code.OK, "error-address-format", "error-system"]
    assert codes[5:10] == [Code.UNKNOWN] * 5
    assert [r.client_id for r in compact[:3]] == ["0", "own-1", "0042"]
    assert [r.provider_id for r in compact[10:18]] == [
        "000123", "AB-77", "18446744073709551616", "9999999999999999999", "\uff11\uff12",
        None, "0", "0000000000000000000",
    ]
    assert compact[13].extra == "2" and compact[15].extra == "no such address"
    assert isinstance(compact[5], SendFailure) and isinstance(compact[5].error, TransportError)
    if not stop:
        assert plain_stop is None
        assert [r.code for r in compact[18:]] == [Code.OK] * 22
        return
    # The stop: the last send's .results are compact, as its return would have been.
    assert isinstance(compact_stop.results, CompactResults)
    assert isinstance(plain_stop.results, list)
    same_records(compact_stop.results, plain_stop.results)
    assert results_of(compact_stop) is compact_stop.results
    assert [r.code for r in compact_stop.results] == (
        [Code.OK] * 5 + [Code.NOT_SENT] * (22 - 5)
    )
    for shown in (repr(compact_stop.results), repr(compact_stop), str(compact_stop)):
        assert password not in shown
    assert repr(compact_stop.results) == (
        "<hpgfast.CompactResults of 22 (not-sent: 17, ok: 5)>"
    )


@pytest.mark.usefixtures("transport")
def test_an_interrupt_carries_compact_results() -> None:
    # Ctrl-C for the sync client, a cancelled task for the async one, during the
    # second request: it finishes within the grace period, the rest never start.
    messages = [Message(f"7903{i:07d}", f"interrupted #{i}") for i in range(50)]
    with Emulator(latency=0.4) as emu, client_for(emu, max_batch=10) as client:
        thread = interrupt_soon(client, 0.6)
        try:
            with pytest.raises(KeyboardInterrupt) as info:
                client.send(messages, compact=True)
        finally:
            thread.join()
        results = info.value.results  # type: ignore[attr-defined]
        assert isinstance(results, CompactResults) and results_of(info.value) is results
        assert [r.code for r in results] == [Code.OK] * 20 + [Code.NOT_SENT] * 30
        assert results.counts() == {Code.OK: 20, Code.NOT_SENT: 30}
        assert all(type(r) is SendFailure for r in results[20:])
        assert_truthful(emu, messages, list(results))


@pytest.mark.usefixtures("transport")
@pytest.mark.parametrize("compact", [False, True])
def test_results_dropped_by_the_caller_are_freed_while_the_client_stays_open(
    compact: bool,
) -> None:
    # Nothing of a batch outlives its send() but what it returned: results the
    # caller drops are freed at once, not when the client next sends or closes.
    messages = [Message(f"7903{i:07d}", f"dropped #{i}", "Shop") for i in range(300)]
    # Each reply 0.2 s away: the sync client's deadline watchdog (a tick every
    # 0.25 s) looks at exchanges while they are out.
    with Emulator(speed=None, latency=0.2) as emu, client_for(emu, max_batch=50) as client:
        results = client.send(messages, compact=compact)
        assert len(results) == 300
        del results
        gc.collect()
        kept = [o for o in gc.get_objects() if type(o) is Batch and o.items is messages]
        assert kept == []


class Heard(Subscriber):
    """The records each request settled with, as the subscribers hear them."""

    def __init__(self) -> None:
        self.finished: dict[int, list[Any]] = {}

    def request_finished(self, event: RequestFinished) -> None:
        self.finished[event.start] = list(event.results)


@pytest.mark.usefixtures("transport")
@pytest.mark.parametrize("concurrency", [1, 4])
def test_compact_results_keep_the_ids_hpgfast_made(concurrency: int) -> None:
    messages = [Message(f"7903{i:07d}", f"made #{i}") for i in range(203)]
    messages[7] = messages[7]._replace(client_id="mine")
    heard = Heard()
    kept: list[SendResult] = []
    with Emulator(speed=None, first_provider_id=10**17) as emu:
        with client_for(emu, max_batch=20, concurrency=concurrency) as client:
            results = client.send(messages, compact=True, subscribers=[heard], results=kept)
    assert isinstance(results, CompactResults)
    assert kept == results and type(kept) is list  # the results= list gets records
    settled = [r for start in sorted(heard.finished) for r in heard.finished[start]]
    same_records(results, settled)
    assert len({r.client_id for r in results}) == len(messages)  # made: 20 characters
    assert results[7].client_id == "mine"
    assert all(len(r.client_id) == 20 for i, r in enumerate(results) if i != 7)
    assert list(results) == settled
    assert results[-1] == settled[-1] and results[-203] == settled[0]


# -- the sequence ------------------------------------------------------------------------


def records() -> list[SendResult]:
    error = TransportError("no reply within timeout=1s", url="http://h/send?...", sent=True)
    return [
        SendResult("ok", "a1", "1001"),
        SendResult("ok", "007", "0007"),
        SendResult("ok", None, "0"),
        SendResult("ok", "x", "9999999999999999999"),
        SendResult("ok", "x", "99999999999999999999"),  # 20 digits
        SendResult("ok", "2", "\u0661\u0662"),  # Arabic-Indic digits
        SendResult("ok", "3", "12a"),
        SendResult("ok", "4", ""),
        SendResult("ok", "5", "1001", "2"),
        SendResult("error-syntax", "6", None, "bad", b"error-syntax;6;;bad\xff"),
        SendResult("error-address-format", "7", None),
        SendFailure(Code.UNKNOWN, "8", None, error),
        SendFailure(Code.UNKNOWN, "9", None, error),
        SendFailure(Code.NOT_SENT, "10", None, None),
    ]


def filling(records: list[Any]) -> CompactResults:
    """``CompactResults(records)`` as a send holds it while its requests settle:
    its requests may be put again (a finished one refuses)."""
    store = CompactResults._spans(len(records), [0], [None])
    store._put(0, records)
    return store


def test_compact_results_are_a_read_only_sequence() -> None:
    want = records()
    got = CompactResults(want)
    same_records(got, want)
    assert isinstance(got, Sequence)
    assert got[11].error is got[12].error is want[11].error
    assert got[-1] == want[-1] and got[-len(want)] == want[0]
    assert got[2:5] == want[2:5] and got[::-3] == want[::-3] and got[5:2] == []
    assert isinstance(got[1:3], list)
    assert list(reversed(got)) == want[::-1]
    assert want[4] in got and SendResult("ok", "zz", "1") not in got
    assert got.index(want[3]) == 3 and got.count(SendResult("ok", "x", "9999999999999999999")) == 1
    assert got.counts() == {"ok": 9, "error-syntax": 1, "error-address-format": 1,
                            Code.UNKNOWN: 2, Code.NOT_SENT: 1}
    assert got != want[:-1] and got != [*want[:-1], SendResult(Code.NOT_SENT, "11")]
    assert got == CompactResults(iter(want)) and got != CompactResults(want[1:])
    assert (got == tuple(want)) is False  # a list's equality: a tuple is not a list
    for bad in (len(want), -len(want) - 1):
        with pytest.raises(IndexError):
            got[bad]
    with pytest.raises(TypeError):
        got["1"]  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        got[0] = want[0]  # type: ignore[index]
    with pytest.raises(TypeError):
        hash(got)
    copy = pickle.loads(pickle.dumps(got))
    assert isinstance(copy, CompactResults) and copy == want
    assert repr(CompactResults()) == "<hpgfast.CompactResults of 0>" and len(CompactResults()) == 0


@pytest.mark.parametrize(
    "pids",
    [
        ["0001", "1", "22", "0", "9999999999999999999", "0000000000000000000", "1001"],
        [None] * 7,
        ["1", "2", "3", "", "5", "6", "7"],  # an empty one: kept as text
        ["1", "2", "3", "\u0664", "5", "6", "7"],  # a digit, not an ASCII one
        ["1", "2", "3", "12345678901234567890", "5", "6", "7"],  # 20 digits
        ["1", "2", None, "4", "5", "6", "7"],
    ],
)
@pytest.mark.parametrize("failure", [False, True])
def test_a_request_of_alike_results_packs_exactly(pids: list[Any], failure: bool) -> None:
    # The usual request (one class, code and error; ids by index; digit provider
    # ids) is packed in a few C-level passes; any other takes each record: the
    # records come back the same either way, put once or twice.
    error = TransportError("cut", url="http://h/send?...", sent=True)
    if failure:
        want = [SendFailure(Code.UNKNOWN, str(j), pid, error) for j, pid in enumerate(pids)]
    else:
        want = [SendResult(Code.OK, str(j), pid) for j, pid in enumerate(pids)]
    got = filling(want)
    same_records(got, want)
    assert [r.provider_id for r in got] == pids
    if failure:
        assert all(r.error is error for r in got)
    odd = [SendResult("ok", "x", "AB"), SendResult("ok", "y", "1", "2"), *want[2:]]
    got._put(0, odd)  # each record kept as it came
    same_records(got, odd)
    got._put(0, want)  # and as at first again: nothing of the odd ones stays
    same_records(got, want)
    fresh = CompactResults(want)
    assert (got._texts, got._whole) == (fresh._texts, fresh._whole)


def test_compact_results_import_first_in_a_fresh_process() -> None:
    # Its module and the core import each other's names: either may load first.
    for name in ("hpgfast.CompactResults", "hpgfast.core.CompactResults"):
        module, _, attr = name.rpartition(".")
        code = f"import {module}; print({module}.{attr}([]))"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert out == "<hpgfast.CompactResults of 0>\n"


def test_the_core_packs_send_batches_only_and_empty_ones_too() -> None:
    exchange = core_exchange()
    empty = core_send(exchange, [], compact=True)
    assert isinstance(empty, CompactResults) and empty == [] and len(empty) == 0
    assert type(core_send(exchange, [], compact=False)) is list
    assert isinstance(exchange.batch(SEND, [("79031234567", "x", "S")], None, compact=True)
                      .compact, CompactResults)
    with pytest.raises(ValueError, match="SEND only"):
        exchange.batch(STATUS, ["1001"], None, compact=True)


def test_a_stop_pickles_with_its_compact_results() -> None:
    error = AccountError("error-insufficient-balance", "http://h/send?password=***&...")
    error.results = CompactResults(records())  # type: ignore[attr-defined]
    copy = pickle.loads(pickle.dumps(error))
    assert copy.results == records() and isinstance(copy.results, CompactResults)


# -- memory ------------------------------------------------------------------------------


def test_compact_results_hold_at_most_150_bytes_per_message() -> None:
    # 100,000 accepted messages through the sans-IO core (the clients' own code
    # path, without a socket), traced by tracemalloc: the bytes the results hold
    # once the send returned, above the messages. The list, for scale, is what a
    # default send() holds (about 190-240 bytes).
    held, _ = results_memory(100_000, compact=True)
    listed, _ = results_memory(100_000, compact=False)
    assert held <= 150, held
    assert held * 4 < listed, (held, listed)


# -- provider ids of 20 digits and more ------------------------------------------------

#: Provider ids the packing must give back byte for byte, whatever it makes of them.
ODD_PIDS = [
    "007", "-5", " 12", "12 ", "1e5", "+1", "0x1F", "1_000", "\u0661\u0662", "\uff11", "",
    "00000000000000000001",  # 20 characters, below 2**64
    "18446744073709551615",  # 2**64 - 1
    "18446744073709551616",  # 2**64
    "99999999999999999999",  # the largest of 20 digits
    "0" * 38, "9" * 38,  # the longest kept as numbers
    "9" * 39, "1" * 60,  # longer: kept as text
]


def test_twenty_digit_provider_ids_are_kept_as_numbers_over_http(transport: str) -> None:
    # The platform's provider ids past 2**63 are 20 digits: kept as numbers, not as
    # a str per message, and given back exactly.
    messages = [Message(f"7903{i:07d}", f"wide #{i}", "Shop") for i in range(230)]
    first = 18_446_744_073_709_551_000  # across 2**64 within the send
    listed: list[SendResult] = []  # the records as each request settled
    with Emulator(speed=None, first_provider_id=first) as emu:
        with client_for(emu, max_batch=40, concurrency=2) as client:
            compact = client.send(messages, compact=True, results=listed)
    assert isinstance(compact, CompactResults)
    assert sorted(r.provider_id for r in compact) == [str(first + k) for k in range(230)]
    same_records(compact, listed)
    assert compact._texts == {} and compact._whole == {}  # no str kept per message


@pytest.mark.parametrize("width", [20, 38])
def test_wide_provider_ids_pack_exactly_put_once_or_twice(width: int) -> None:
    top = 10**width - 1
    pids = [str(top - k * 7_919).zfill(width) for k in range(50)]
    pids[3] = "0" * (width - 1) + "1"  # leading zeros
    pids[9] = str(2**64).zfill(width)
    want = [SendResult(Code.OK, str(j), pid) for j, pid in enumerate(pids)]
    got = filling(want)
    same_records(got, want)
    assert got._texts == {}
    narrow = [SendResult(Code.OK, str(j), str(j + 1)) for j in range(50)]
    got._put(0, narrow)  # a request settled again: nothing of the wide ids stays
    same_records(got, narrow)
    odd = [*want[:10], SendResult(Code.OK, "10", "x"), *want[11:]]
    got._put(0, odd)  # record by record
    same_records(got, odd)
    assert [r.provider_id for r in got] == [r.provider_id for r in odd]


@pytest.mark.parametrize("alike", [True, False], ids=["alike", "mixed"])
def test_odd_provider_ids_come_back_byte_exact(alike: bool) -> None:
    want = [SendResult(Code.OK, str(j), pid) for j, pid in enumerate(ODD_PIDS)]
    if not alike:
        want.append(SendResult("error-x", str(len(want)), None))
    got = CompactResults(want)
    same_records(got, want)
    assert [r.provider_id for r in got] == [r.provider_id for r in want]
    copy = pickle.loads(pickle.dumps(got))
    assert [r.provider_id for r in copy] == [r.provider_id for r in want]


def test_compact_results_hold_at_most_150_bytes_per_message_with_20_digit_ids() -> None:
    # The platform's provider ids past 2**63: 20 digits each.
    held, _ = results_memory(100_000, compact=True, first_provider_id=10**19)
    assert held <= 150, held


# -- read-only -------------------------------------------------------------------------


def test_compact_results_cannot_be_rewritten() -> None:
    want = records()
    got = CompactResults(want)
    other = CompactResults([SendResult("ok", "z", "1")])
    for name in CompactResults.__slots__:
        if name == "__weakref__":
            continue
        with pytest.raises(AttributeError):
            setattr(got, name, getattr(other, name))
        with pytest.raises(AttributeError):
            delattr(got, name)
    for name, value in (("foo", 1), ("__class__", CompactResults), ("counts", len)):
        with pytest.raises(AttributeError):
            setattr(got, name, value)
    with pytest.raises(TypeError, match="read-only"):
        got.__init__([SendResult("ok", "z", "1")])  # type: ignore[misc]
    with pytest.raises(TypeError, match="read-only"):
        CompactResults.__init__(got, [])
    same_records(got, want)  # nothing of it changed
    # What stays: pickling, copying, equality, a weak reference.
    import copy
    import weakref

    assert pickle.loads(pickle.dumps(got)) == want and copy.copy(got) == want
    assert copy.deepcopy(got) == got and weakref.ref(got)() is got


# -- a field the platform adds to each line (a part count) -------------------------------


def test_a_part_count_on_every_line_is_packed_and_equals_the_list_over_http(
    transport: str,
) -> None:
    # Some platforms add a part count to each SEND line (``ok;cid;pid;2``): the
    # records carry it as ``.extra``; the compact form gives it back, and keeps no
    # record whole for it.
    messages = [Message(f"7903{i:07d}", f"parts #{i}", "Shop") for i in range(230)]
    listed: list[SendResult] = []  # the records as each request settled
    with Emulator(speed=None, send_extra="2") as emu:
        with client_for(emu, max_batch=40, concurrency=2) as client:
            plain = client.send(messages)
            compact = client.send(messages, compact=True, results=listed)
    assert isinstance(compact, CompactResults) and type(plain) is list
    same_records(compact, listed)
    assert [r.extra for r in compact] == [r.extra for r in plain] == ["2"] * 230
    assert [r.raw for r in compact] == [r.raw for r in plain] == [None] * 230
    assert [(r.code, len(r)) for r in compact] == [(r.code, len(r)) for r in plain]
    assert compact._texts == {} and compact._whole == {}  # nothing kept per message
    copy = pickle.loads(pickle.dumps(compact))
    assert isinstance(copy, CompactResults)
    same_records(copy, listed)


def test_a_part_count_costs_at_most_150_bytes_per_message_over_http(transport: str) -> None:
    # A real send() against an emulator in a child process (its ledger is not
    # traced here), a part count on every line: the bytes the compact results hold
    # once send() returned, above the messages.
    total = 20_000
    messages = [Message(f"7903{i:07d}", f"parts #{i}", "Shop") for i in range(total)]
    emulator = EmulatorProcess("--send-extra", "2")
    try:
        with Client(emulator.url, LOGIN, PASSWORD) as client:
            client.send(messages[:10], compact=True)  # the connections made, warm
            gc.collect()
            tracemalloc.start()
            try:
                base = tracemalloc.get_traced_memory()[0]
                results = client.send(messages, compact=True)
                gc.collect()
                held = (tracemalloc.get_traced_memory()[0] - base) / total
            finally:
                tracemalloc.stop()
    finally:
        emulator.close()
    assert isinstance(results, CompactResults) and len(results) == total
    assert results[0].extra == results[-1].extra == "2" and results[-1].ok
    assert held <= 150, held


def test_a_part_count_costs_at_most_150_bytes_per_message_through_the_core() -> None:
    held, _ = results_memory(100_000, compact=True, send_extra="2")
    assert held <= 150, held
    held, _ = results_memory(100_000, compact=True, send_extra="2", first_provider_id=10**19)
    assert held <= 150, held


@pytest.mark.parametrize("alike", [True, False], ids=["alike", "mixed"])
def test_varied_extras_pack_exactly_and_repeated_ones_are_shared(alike: bool) -> None:
    # Part counts of a handful of values, a few descriptions repeated, then one of
    # each message's own (kept whole once too many distinct ones came): all exact.
    want: list[Any] = [
        SendResult(Code.OK, str(j), str(1000 + j), str(1 + j % 4)) for j in range(60)
    ]
    if not alike:
        want += [SendResult("error-x", str(60 + j), None, f"bad #{j % 3}") for j in range(9)]
        want += [SendResult(Code.OK, str(69 + j), f"p{j}", "2") for j in range(3)]
        want.append(SendResult("error-syntax", "72", None, "bad", b"error-syntax;72;;bad\xff"))
        want.append(SendResult(Code.OK, "73", "9999", "2;3;"))
    got = CompactResults(want)
    same_records(got, want)
    assert got._whole == {} if alike else set(got._whole) == {72}
    copy = pickle.loads(pickle.dumps(got))
    same_records(copy, want)
    # Each message's own extra: packed up to a bound of distinct values, whole past it.
    own = [SendResult(Code.OK, str(j), str(j), f"note {j}") for j in range(5000)]
    got = CompactResults(own)
    same_records(got, own)
    assert len(got._shapes) <= 1100


def test_extras_packed_again_leave_nothing_behind() -> None:
    plain = [SendResult(Code.OK, str(j), str(j + 1)) for j in range(50)]
    parts = [SendResult(Code.OK, str(j), str(j + 1), "3") for j in range(50)]
    got = CompactResults._spans(50, [0], [None])
    got._put(0, parts)
    same_records(got, parts)
    got._put(0, plain)
    same_records(got, plain)
    got._put(0, [*parts[:10], SendResult(Code.OK, "10", "x", "3"), *parts[11:]])
    assert got[10] == SendResult(Code.OK, "10", "x", "3") and got[11] == parts[11]


@pytest.mark.usefixtures("transport")
def test_compact_results_refuse_writes_to_what_they_hold() -> None:
    # Read-only through its API, and its packed arrays and tables refuse item
    # assignment too, once filled: from the constructor, a pickle or a send().
    with Emulator(speed=None) as emu, client_for(emu, max_batch=40) as client:
        messages = [Message(f"7903{i:07d}", f"ro #{i}") for i in range(100)]
        sent = client.send(messages, compact=True)
    want = records()
    for got in (CompactResults(want), pickle.loads(pickle.dumps(CompactResults(want))), sent):
        before = list(got)
        for name in ("_kinds", "_pids", "_starts"):
            with pytest.raises(TypeError):
                getattr(got, name)[0] = 1
        with pytest.raises(TypeError):
            got._prefixes[0] = "x"
        for name in ("_whole", "_texts", "_kept", "_highs", "_shapes"):
            with pytest.raises(TypeError):
                getattr(got, name)[0] = SendResult("ok", "z", "1")
        with pytest.raises(TypeError, match="read-only"):
            got._put(0, [SendResult("ok", "z", "1")])
        assert list(got) == before
    kept = CompactResults([SendResult("ok", "own", "1"), SendResult("ok", "x", "1" * 20)])
    with pytest.raises(TypeError):
        kept._kept[0][0] = "other"
    with pytest.raises(TypeError):
        kept._highs[0] = kept._highs[0]
