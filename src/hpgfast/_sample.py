"""Seeded sample data: the standard batch and the standard replies.

The benchmarks (``bench/``), ``hpgfast bench`` and ``hpgfast demo`` all use these, so
every figure hpgfast quotes is measured on the same data.

The standard batch is what an SMS sender really pushes: one-time codes, delivery
notices and campaign texts, in Latin, Cyrillic and with emoji, up to 160 characters,
to 11-digit addresses. The standard replies are what the platform answers: mostly
``ok`` lines, with a realistic share of errors, statuses and reasons. Everything is
generated from a fixed seed, so every run (and every peer) sees the same bytes.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from functools import cache

from ._records import Message

STANDARD_BATCH = 10_000
STANDARD_REPLY = 100_000

_LATIN = (
    "Your code is {n}. Do not share it with anyone.",
    "Order #{n} has shipped and will arrive tomorrow between 10:00 and 14:00.",
    "Hi! Black Friday: -30% on everything until Sunday, see shop.example/{n} & enjoy.",
    "Payment of {n}.00 EUR received, thank you. Balance: 1,024.50 EUR.",
)
_CYRILLIC = (
    "Ваш код подтверждения: {n}. Никому его не сообщайте.",
    "Заказ №{n} передан в доставку. Курьер позвонит за час до приезда.",
    "Скидка 30% на всё до воскресенья! Подробности: shop.example/{n}",
    "Списание {n} ₽ по карте *1234. Доступно: 10 240,50 ₽",
)
_EMOJI = (
    "🎉 Congrats! You won {n} points 🎁 Redeem them today 🛒",
    "Доставка 🚚 заказа {n} уже в пути! 📦 Ждите курьера 😊",
    "Reminder ⏰: appointment #{n} tomorrow at 9:30 👩‍⚕️",
)


def _text(rng: random.Random) -> str:
    roll = rng.random()
    pool = _LATIN if roll < 0.5 else _CYRILLIC if roll < 0.8 else _EMOJI
    text = rng.choice(pool).format(n=rng.randrange(100_000, 999_999))
    # Campaign texts run up to the 160-character limit of one SMS.
    while rng.random() < 0.35 and len(text) < 110:
        text += " " + rng.choice(pool).format(n=rng.randrange(10, 99))
    return text[:160]


@cache
def standard_batch(n: int = STANDARD_BATCH, seed: int = 1) -> tuple[Message, ...]:
    """``n`` messages: 50% Latin, 30% Cyrillic, 20% with emoji; 11-digit addresses."""
    rng = random.Random(seed)
    return tuple(Message(f"79{rng.randrange(10**9):09d}", _text(rng), "hpgfast") for _ in range(n))


_REASONS = ("unknown-subscriber", "absent-subscriber", "expired", "rejected", "network-error")


@cache
def standard_status_reply(n: int = STANDARD_REPLY, seed: int = 2) -> bytes:
    """``n`` STATUS lines: mixed codes, statuses, reasons and times; CRLF line ends."""
    rng = random.Random(seed)
    base = datetime(2026, 11, 27, 9, 0, 0)
    lines = []
    for _ in range(n):
        pid = 10**11 + rng.randrange(10**11)
        roll = rng.random()
        when = (base + timedelta(seconds=rng.randrange(7200))).strftime("%Y.%m.%d %H:%M:%S")
        if roll < 0.03:
            lines.append(f"error-provider-id-unknown;{pid};;;")
        elif roll < 0.70:
            lines.append(f"ok;{pid};delivered;{when};")
        elif roll < 0.80:
            lines.append(f"ok;{pid};undelivered;{when};{rng.choice(_REASONS)}")
        elif roll < 0.88:
            lines.append(f"ok;{pid};sent;{when};")
        elif roll < 0.95:
            lines.append(f"ok;{pid};enqueued;{when};")
        elif roll < 0.98:
            lines.append(f"ok;{pid};failed;{when};network-error")
        else:
            lines.append(f"ok;{pid};delayed;{when};")
    return ("\r\n".join(lines) + "\r\n").encode()


@cache
def standard_send_reply(n: int = STANDARD_REPLY, seed: int = 3) -> bytes:
    """``n`` SEND lines ``code;clientId;providerId``, 2% of them rejected."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.01:
            lines.append(f"error-address-format;{i};")
        elif roll < 0.02:
            lines.append(f"error-address-unknown;{i};")
        else:
            lines.append(f"ok;{i};{10**11 + i}")
    return ("\r\n".join(lines) + "\r\n").encode()


def query_pairs(batch: tuple[Message, ...]) -> list[tuple[str, str]]:
    """The batch as the (name, value) pairs a hand-written client would build."""
    pairs = []
    for i, m in enumerate(batch):
        pairs += [
            (f"subject[{i}]", m.subject),
            (f"address[{i}]", m.address),
            (f"text[{i}]", m.text),
        ]
    return pairs  # type: ignore[return-value]
