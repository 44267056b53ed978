"""The HPG operations the emulator plays: SEND and STATUS, from a query to a reply body.

Strategy: the emulator is an oracle for hpgfast's encoder and parsers, so this part
decodes queries with ``urllib.parse.parse_qsl`` only, never with hpgfast's codec.
Field shapes (balance, account stops, clientId modes, extra fields) are each decided
once per request from the settings value read once, and whatever works per message
(the balance, the clientIds already seen, truncated ids, an extra field) runs only
when its setting is on, so that the emulator off them is as fast as without them.
The balance and the clientIds seen are settled for a whole request under one lock,
so concurrent requests never spend a message twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Optional
from urllib.parse import parse_qsl

from .._wire import (
    ADDRESS,
    CLIENT_ID,
    PROVIDER_ID,
    SEND_FIELDS,
    SUBJECT,
    TEXT,
    Code,
)
from ._core import EmulatorCore
from ._ledger import Accepted
from ._lifecycle import status_at
from ._settings import DATE_FORMATS, EmulatorSettings

#: The code a SEND gets when the account's balance is spent (not in the
#: specification's table; seen in the field).
INSUFFICIENT_BALANCE = Code.ERROR_INSUFFICIENT_BALANCE
_UNSAFE_ECHO = frozenset(";\r\n")
_SUBJECT_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F))


class _Rejected(Exception):
    """A whole request refused with one code line (``error-auth``, ``error-syntax``)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Platform(EmulatorCore):
    """The HPG side of ``Emulator`` (a mixin): what SEND and STATUS answer."""

    def _parse(
        self, query: bytes, s: EmulatorSettings
    ) -> tuple[list[tuple[str, str]], bool]:
        """The query's pairs, and whether the credentials are right."""
        try:
            pairs = parse_qsl(
                query.decode("ascii"),
                keep_blank_values=True,
                strict_parsing=False,
                encoding="utf-8",
                errors="strict",
            )
        except UnicodeDecodeError:
            raise _Rejected(Code.ERROR_SYNTAX) from None
        login = password = None
        login_param = s.login_param
        password_param = s.password_param
        for name, value in pairs:
            if name == login_param:
                if login is not None:
                    raise _Rejected(Code.ERROR_SYNTAX)
                login = value
            elif name == password_param:
                if password is not None:
                    raise _Rejected(Code.ERROR_SYNTAX)
                password = value
        return pairs, login == s.login and password == s.password

    def _send(self, query: bytes, number: int) -> bytes:
        try:
            # The settings read once: a live setting changed meanwhile waits for the
            # next request.
            return self._send_lines(query, number, self._settings)
        except _Rejected as exc:
            return exc.code.encode() + b"\n"

    def _send_lines(self, query: bytes, number: int, s: EmulatorSettings) -> bytes:
        pairs, authentic = self._parse(query, s)
        indexed: dict[int, dict[str, str]] = {}
        single: dict[str, str] = {}
        request_params: dict[str, str] = {}
        credentials = (s.login_param, s.password_param)
        for name, value in pairs:
            if name[-1:] == "]":
                base, bracket, index = name[:-1].partition("[")
                if not bracket or not base or not index.isdigit() or not index.isascii():
                    raise _Rejected(Code.ERROR_SYNTAX)
                fields = indexed.get(int(index))
                if fields is None:
                    fields = indexed[int(index)] = {}
                if base in fields:
                    raise _Rejected(Code.ERROR_SYNTAX)
                fields[base] = value
            elif name in credentials:
                continue
            elif "[" in name or "]" in name:
                raise _Rejected(Code.ERROR_SYNTAX)
            elif name in SEND_FIELDS:
                if name in single:
                    raise _Rejected(Code.ERROR_SYNTAX)
                single[name] = value
            else:
                if name in request_params:
                    raise _Rejected(Code.ERROR_SYNTAX)
                request_params[name] = value
        if not authentic:
            raise _Rejected(Code.ERROR_AUTH)
        if s.account_state is not None:
            raise _Rejected(s.account_state)
        if single:
            if indexed:
                raise _Rejected(Code.ERROR_SYNTAX)
            indexed = {0: single}
        elif not indexed:
            raise _Rejected(Code.ERROR_SYNTAX)

        ordered = sorted(indexed.items()) if len(indexed) > 1 else list(indexed.items())
        # The id each reply line carries: the clientId, else the message's index.
        if s.client_ids == "echo":
            ids = [fields.get(CLIENT_ID, str(index)) for index, fields in ordered]
        else:
            ids = [str(index) for index, _ in ordered]
        repeated = {i for i, n in Counter(ids).items() if n > 1} if len(ids) > 1 else set()
        codes: list[str] = []
        accepted: list[Accepted] = []
        for (_, fields), reply_id in zip(ordered, ids):
            code = self._check(fields, reply_id, repeated, s)
            codes.append(code)
            if code == Code.OK:
                extra = None
                if len(fields) > 4 or (len(fields) == 4 and CLIENT_ID not in fields):
                    extra = {k: v for k, v in fields.items() if k not in SEND_FIELDS}
                accepted.append(
                    (
                        fields[ADDRESS],
                        fields[SUBJECT],
                        fields[TEXT],
                        fields.get(CLIENT_ID),
                        extra,
                    )
                )
        if self._balance is not None or s.unique_client_ids:
            accepted = self._settle(ordered, codes, s.unique_client_ids)
        schedule = self._schedule
        if schedule is None:
            pid = self.ledger.append(number, self.now(), request_params, accepted)
        else:
            lasts = "".join([message[0][-1] for message in accepted]).encode("ascii")
            # One lock around reading the clock and scheduling keeps the schedule's
            # acceptance times in order across connections.
            with self._push_lock:
                now = self.now()
                pid = self.ledger.append(number, now, request_params, accepted)
                schedule.add(pid, now, lasts)
            if accepted:
                self._push_wake.set()
        limit = s.max_client_id_length
        if limit is not None:
            ids = [reply_id[:limit] for reply_id in ids]
        lines = []
        for code, reply_id in zip(codes, ids):
            if any(c in _UNSAFE_ECHO for c in reply_id):
                reply_id = ""
            if code == Code.OK:
                lines.append(f"ok;{reply_id};{pid}\n")
                pid += 1
            elif s.reject_description is not None:
                lines.append(f"{code};{reply_id};;{s.reject_description}\n")
            else:
                lines.append(f"{code};{reply_id};\n")
        extra_field = s.send_extra
        if extra_field is not None:
            end = f";{extra_field}\n"
            lines = [line[:-1] + end if line[:3] == "ok;" else line for line in lines]
        if s.reply_order == "shuffled":
            self._rng.shuffle(lines)
        return "".join(lines).encode(s.text_charset, "replace")

    def _settle(
        self, ordered: Sequence[tuple[int, dict[str, str]]], codes: list[str], unique: bool
    ) -> list[Accepted]:
        """Apply the account's rules to a request's codes (in place): clientIds
        accepted before, then the balance; returns the messages still accepted.

        Raises:
            _Rejected: the balance was spent before the request came.
        """
        with self._account_lock:
            seen = self._seen_ids if unique else None
            if seen is not None:
                for n, code in enumerate(codes):
                    if code == Code.OK and ordered[n][1].get(CLIENT_ID) in seen:
                        codes[n] = Code.ERROR_ID_NOT_UNIQUE
                        self._repeated_ids += 1
            left = self._balance
            if left is not None:
                if left == 0:
                    raise _Rejected(INSUFFICIENT_BALANCE)
                for n, code in enumerate(codes):
                    if code == Code.OK:
                        if left:
                            left -= 1
                        else:
                            codes[n] = INSUFFICIENT_BALANCE
                self._balance = left
            accepted: list[Accepted] = []
            for (_, fields), code in zip(ordered, codes):
                if code != Code.OK:
                    continue
                client_id = fields.get(CLIENT_ID)
                if seen is not None and client_id is not None:
                    seen.add(client_id)
                extra = {k: v for k, v in fields.items() if k not in SEND_FIELDS} or None
                accepted.append((fields[ADDRESS], fields[SUBJECT], fields[TEXT], client_id, extra))
        return accepted

    def _check(
        self, fields: dict[str, str], reply_id: str, repeated: set[str], s: EmulatorSettings
    ) -> str:
        """The code for one message."""
        address = fields.get(ADDRESS)
        subject = fields.get(SUBJECT)
        if not address or not subject or not fields.get(TEXT):
            return Code.ERROR_SYNTAX
        if any(c in _UNSAFE_ECHO for c in reply_id):
            return Code.ERROR_SYNTAX
        if reply_id in repeated:
            return Code.ERROR_ID_NOT_UNIQUE
        digits = address[1:] if address[0] == "+" else address
        if not (10 <= len(digits) <= 15 and digits.isascii() and digits.isdigit()):
            return Code.ERROR_ADDRESS_FORMAT
        numeric = subject[1:] if subject[0] == "+" else subject
        if numeric.isascii() and numeric.isdigit():
            if len(numeric) > 15:
                return Code.ERROR_SUBJECT_FORMAT
        elif len(subject) > s.subject_max_length or not _SUBJECT_CHARS.issuperset(subject):
            return Code.ERROR_SUBJECT_FORMAT
        if address in s.deny_addresses or (
            s.allow_addresses is not None and address not in s.allow_addresses
        ):
            return Code.ERROR_ADDRESS_UNKNOWN
        if subject in s.deny_subjects or (
            s.allow_subjects is not None and subject not in s.allow_subjects
        ):
            return Code.ERROR_SUBJECT_UNKNOWN
        if address in s.system_error_addresses:
            return Code.ERROR_SYSTEM
        return Code.OK

    def _status(self, query: bytes) -> bytes:
        s = self._settings
        try:
            pairs, authentic = self._parse(query, s)
            ids: dict[int, str] = {}
            single: Optional[str] = None
            for name, value in pairs:
                if name == PROVIDER_ID:
                    if single is not None:
                        raise _Rejected(Code.ERROR_SYNTAX)
                    single = value
                elif name[-1:] == "]" and name.startswith(PROVIDER_ID + "["):
                    index = name[len(PROVIDER_ID) + 1 : -1]
                    if not index.isdigit() or not index.isascii() or int(index) in ids:
                        raise _Rejected(Code.ERROR_SYNTAX)
                    ids[int(index)] = value
            if not authentic:
                raise _Rejected(Code.ERROR_AUTH)
            if s.account_state is not None:
                raise _Rejected(s.account_state)
            if single is not None:
                if ids:
                    raise _Rejected(Code.ERROR_SYNTAX)
                ids = {0: single}
            elif not ids:
                raise _Rejected(Code.ERROR_SYNTAX)
        except _Rejected as exc:
            return exc.code.encode() + b"\n"
        now = self.now()
        timing = self._timing
        lifecycle = self._lifecycle
        date_format = DATE_FORMATS[s.date_style]
        lines = []
        for _, provider_id in sorted(ids.items()):
            key = self._lookup(provider_id)
            if key is None:
                if any(c in _UNSAFE_ECHO for c in provider_id):
                    provider_id = ""
                lines.append(f"{Code.ERROR_PROVIDER_ID_UNKNOWN};{provider_id};;;\n")
                continue
            last, accepted = key
            status, since, reason = status_at(last, now - accepted, timing, lifecycle)
            when = self.datetime_at(accepted + since).strftime(date_format)
            lines.append(f"{Code.OK};{provider_id};{status};{when};{reason}\n")
        if s.reply_order == "shuffled":
            self._rng.shuffle(lines)
        return "".join(lines).encode(s.text_charset, "replace")

    def _lookup(self, provider_id: str) -> Optional[tuple[int, float]]:
        if not (provider_id.isascii() and provider_id.isdigit()) or len(provider_id) > 19:
            return None
        number = int(provider_id)
        if str(number) != provider_id:
            return None
        return self.ledger.lifecycle_key(number)
