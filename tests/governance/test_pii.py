from __future__ import annotations

import copy
import time
from typing import Any

import msgspec
import pytest

from sidecache.governance.pii import KINDS, Redactor, redact, redact_messages

POSITIVES: list[tuple[str, str, str]] = [
    # (text, expected redaction, kind)
    ("mail me at john.doe+tag@example.co.uk please", "mail me at [EMAIL] please", "email"),
    ("<a.b_c@sub.example.org>", "<[EMAIL]>", "email"),
    ("call +1 (555) 123-4567 now", "call [PHONE] now", "phone"),
    ("call +44 20 7946 0958", "call [PHONE]", "phone"),
    ("+33 6 12 34 56 78", "[PHONE]", "phone"),
    ("+4915112345678", "[PHONE]", "phone"),
    ("555-123-4567", "[PHONE]", "phone"),
    ("(555) 123-4567", "[PHONE]", "phone"),
    ("555.123.4567", "[PHONE]", "phone"),
    ("reach me on 06 12 34 56 78.", "reach me on [PHONE].", "phone"),
    ("020 7946 0958", "[PHONE]", "phone"),
    ("phone: 5551234567", "phone: [PHONE]", "phone"),
    ("Tel. 030/12345678", "Tel. [PHONE]", "phone"),
    ("card 4111 1111 1111 1111 exp 12/27", "card [CARD] exp 12/27", "card"),
    ("4111-1111-1111-1111", "[CARD]", "card"),
    ("pay with 5555555555554444.", "pay with [CARD].", "card"),
    ("amex 378282246310005", "amex [CARD]", "card"),
    ("IBAN DE89 3704 0044 0532 0130 00.", "IBAN [IBAN].", "iban"),
    ("GB82WEST12345698765432", "[IBAN]", "iban"),
    ("to FR1420041010050500013M02606 today", "to [IBAN] today", "iban"),
    ("from 192.168.1.20 to 8.8.8.8", "from [IP] to [IP]", "ip"),
    ("host 10.0.0.1:8080", "host [IP]:8080", "ip"),
    ("addr 2001:db8::8a2e:370:7334", "addr [IP]", "ip"),
    ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "[IP]", "ip"),
    ("fe80::1ff:fe23:4567:890a%", "[IP]%", "ip"),
    ("::ffff:192.168.0.1", "[IP]", "ip"),
    ("key sk-proj-abcdefghijklmnopqrstuvwxyz123456", "key [SECRET]", "secret"),
    ("sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "[SECRET]", "secret"),
    ("AKIAIOSFODNN7EXAMPLE", "[SECRET]", "secret"),
    ("ghp_" + "a1" * 18, "[SECRET]", "secret"),
    ("xoxb-1234567890-abcdefghij", "[SECRET]", "secret"),
    ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "[SECRET]", "secret"),
    ("api_key=3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c", "api_key=[SECRET]", "secret"),
    ("Authorization: Bearer abc123def456ghi789", "Authorization: Bearer [SECRET]", "secret"),
    ('{"password": "hunter22!"}', '{"password": "[SECRET]"}', "secret"),
    (
        "export OPENAI_API_KEY=sk-abcdefghijklmnopqrstuvwx",
        "export OPENAI_API_KEY=[SECRET]",
        "secret",
    ),
    (
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_SECRET_ACCESS_KEY=[SECRET]",
        "secret",
    ),
    (
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0T",
        "[SECRET]",
        "secret",
    ),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nabc\n-----END RSA PRIVATE KEY-----",
        "[SECRET]",
        "secret",
    ),
]

NEGATIVES: list[str] = [
    # versions
    "version 1.2.3",
    "v2.10.0",
    "Python 3.11.7 and numpy 1.26.4",
    "upgrade to 10.0.19041.1",
    "v1.2.3.4",
    # dates and times
    "on 2024-05-01",
    "05/01/2024",
    "2024/05/01",
    "10/10/2010 10:10",
    "2024-05-01T12:30:45Z",
    "ISO 8601 2024-05-01 12:30:45.123",
    "at 12:30:45",
    "meet at 12:30",
    "the year 2023-2024",
    "in 1999 and 2024",
    "timestamp 1717171717",
    # money and numbers
    "costs $1,234.56",
    "€ 99.99",
    "amount: 1234567.89",
    "1,000,000 users",
    "pi is 3.1415926535",
    "3.14159265358979",
    "1e-9 and 1.5e10 and 0.0001",
    "temperature 0.7, top_p 0.95",
    "coordinates 48.8566, 2.3522",
    "between 100 and 200",
    "2+2=4",
    "10-20-30",
    "+5%",
    "0 1 2 3 4 5 6 7 8 9",
    # ports, sizes, codes
    "port 8080",
    "localhost:8080",
    "width=1920 height=1080",
    "image 1024x768",
    "chmod 0755 file",
    "0x7fffffff",
    "#ff00ff",
    "ratio 16:9",
    # identifiers
    "order #12345",
    "order 48213",
    "Ticket ABC-1234",
    "ISBN 978-3-16-148410-0",
    "zip 90210",
    "room 101, page 12 of 345",
    "call 911",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "git commit 3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a",
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "MAC 00:1A:2B:3C:4D:5E",
    # code and prose that look a bit like the real thing
    "std::vector<int> and a::b::c",
    "x[::2] and y[1::2] and z[::1]",
    "IPv6 localhost ::1 is fine",
    "max_tokens: 4096",
    "the token budget is 1000",
    "tokens=12",
    "password policy requires 8 characters",
    "secret santa",
    "Basic understanding of Python",
    "Bearer tokens are used by OAuth",
    "DE and 89 are not IBANs",
    "call me at noon",
    "phone numbers are cool",
    "send it to user@localhost",
    "@decorator and a@b",
]


@pytest.mark.parametrize(("text", "expected", "kind"), POSITIVES)
def test_detects(text: str, expected: str, kind: str) -> None:
    out, kinds = redact(text)
    assert out == expected
    assert kinds == [kind]


@pytest.mark.parametrize("text", NEGATIVES)
def test_no_false_positive(text: str) -> None:
    assert redact(text) == (text, [])


def test_checksums_reject_lookalikes() -> None:
    # a card-shaped number that fails Luhn, an IBAN-shaped string that fails mod-97
    assert redact("4111 1111 1111 1112") == ("4111 1111 1111 1112", [])
    assert redact("DE89 3704 0044 0532 0130 01") == ("DE89 3704 0044 0532 0130 01", [])
    assert redact("999.1.1.1") == ("999.1.1.1", [])
    assert redact("ABCD::EFGH") == ("ABCD::EFGH", [])


def test_several_kinds_in_one_text() -> None:
    text = (
        "I'm Ann (ann@example.com, +1 555 123 4567). Card 4242424242424242, "
        "server 203.0.113.7, key sk-abcdefghijklmnopqrstuvwxyz0123. "
        "Released in v1.2.3 on 2024-05-01."
    )
    out, kinds = redact(text)
    assert out == (
        "I'm Ann ([EMAIL], [PHONE]). Card [CARD], server [IP], key [SECRET]. "
        "Released in v1.2.3 on 2024-05-01."
    )
    assert sorted(kinds) == sorted(["email", "phone", "card", "ip", "secret"])


def test_chosen_kinds_only() -> None:
    r = Redactor(["email"])
    assert r.redact("a@example.com 8.8.8.8") == ("[EMAIL] 8.8.8.8", ["email"])
    with pytest.raises(ValueError):
        Redactor(["passport"])
    assert set(KINDS) == {"email", "phone", "card", "iban", "ip", "secret"}


def test_redact_messages_dicts() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "My mail is bob@example.com"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "and my IP is 8.8.4.4"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
        {"role": "assistant", "content": None, "tool_calls": []},
    ]
    before = copy.deepcopy(messages)
    out, kinds = redact_messages(messages)
    assert messages == before  # the input is left alone
    assert out[0] is messages[0]  # untouched messages are not copied
    assert out[1]["content"] == "My mail is [EMAIL]"
    assert out[2]["content"][0] == {"type": "text", "text": "and my IP is [IP]"}
    assert out[2]["content"][1] is messages[2]["content"][1]
    assert out[3] is messages[3]
    assert kinds == ["email", "ip"]


class Part(msgspec.Struct):
    type: str
    text: str | None = None


class Message(msgspec.Struct):
    role: str
    content: str | list[Part] | None = None


def test_redact_messages_structs() -> None:
    messages = [
        Message(role="user", content="call 555-123-4567"),
        Message(role="user", content=[Part(type="text", text="card 4111111111111111")]),
        Message(role="user", content="nothing here"),
    ]
    out, kinds = redact_messages(messages)
    assert out[0] == Message(role="user", content="call [PHONE]")
    assert out[1] == Message(role="user", content=[Part(type="text", text="card [CARD]")])
    assert out[2] is messages[2]
    assert messages[0].content == "call 555-123-4567"
    assert kinds == ["phone", "card"]


def test_speed() -> None:
    text = ("The release 2.4.1 shipped on 2024-05-01 with 1,234 fixes; see #4521. " * 60)[:4000]
    n = 50
    start = time.perf_counter()
    for _ in range(n):
        redact(text)
    per_call = (time.perf_counter() - start) / n
    assert per_call < 0.01, per_call  # a 4 kB prompt in well under 10 ms


def test_card_grouping_must_be_a_card_layout() -> None:
    assert redact("3782 822463 10005") == ("[CARD]", ["card"])  # Amex 4-6-5
    assert redact("37 8282 2463 10005") == ("37 8282 2463 10005", [])
