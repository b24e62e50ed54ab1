"""Find and mask personal data and secrets in prompts.

Each kind is a regular expression for candidates plus, where the format allows, a check that
rules out look-alikes: card numbers must pass Luhn, IBANs mod-97, IP addresses must parse.
Patterns demand the shape of the real thing (separators, lengths, leading ``+`` or ``0`` for
phone numbers) so ordinary numbers — versions, dates, times, prices, ports, years, short order
numbers — stay untouched. Matches become typed placeholders: ``[EMAIL]``, ``[PHONE]``,
``[CARD]``, ``[IBAN]``, ``[IP]``, ``[SECRET]``.

Kinds run in a fixed order (secrets first, phone numbers last) so a long token is masked whole
before a shorter pattern could bite a piece of it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import msgspec

KINDS: tuple[str, ...] = ("secret", "email", "iban", "card", "ip", "phone")

# -- secrets -------------------------------------------------------------------------------

_SECRET_WHOLE = re.compile(
    r"""
    (?=[sSrpAgxe-])(?<![A-Za-z0-9_-])(?:
        sk-[A-Za-z0-9_-]{20,}                         # OpenAI, Anthropic, sidecache keys
      | (?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}   # Stripe
      | (?:AKIA|ASIA)[0-9A-Z]{16}                     # AWS access key id
      | gh[pousr]_[A-Za-z0-9]{30,}                    # GitHub tokens
      | github_pat_[A-Za-z0-9_]{30,}
      | xox[abposr]-[A-Za-z0-9-]{10,}                 # Slack
      | AIza[0-9A-Za-z_-]{35}                         # Google API key
      | glpat-[A-Za-z0-9_-]{20,}                      # GitLab
      | eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}  # JWT
    )(?![A-Za-z0-9_-])
    | -----BEGIN[A-Z ]*PRIVATE\ KEY-----[\s\S]*?-----END[A-Z ]*PRIVATE\ KEY-----
    """,
    re.VERBOSE,
)

# The value after ``api_key=``, ``"password": "..."`` and the like: the name is the evidence.
_SECRET_ASSIGNED = re.compile(
    r"""(?ix)
    (?=[aspct])(?<![a-z0-9])
    (?:api[_-]?key|apikey|secret|token|password|passwd|pwd|access[_-]?key|private[_-]?key
      |auth[_-]?token|credentials?|client[_-]?secret)
    ["']?\s*[:=]\s*["']?
    (?P<value>[^\s"',;&]{8,})
    """
)

# ``Bearer <token>`` / ``Basic <base64>``: a token must look like one (it has a digit).
_SECRET_SCHEME = re.compile(r"\b(?:Bearer|Basic)\s+(?P<value>[A-Za-z0-9_./+~=-]{12,})")


def _token_like(value: str) -> bool:
    return any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


# -- e-mail --------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])"
)

# -- IBAN ----------------------------------------------------------------------------------

_IBAN = re.compile(
    r"(?=[A-Z]{2}\d\d)(?<![A-Za-z0-9])[A-Z]{2}\d{2}"
    r"(?:[A-Z0-9]{11,30}|(?:\ [A-Z0-9]{4}){2,7}(?:\ [A-Z0-9]{1,3})?)"
    r"(?![A-Za-z0-9])"
)


def _iban_ok(candidate: str) -> bool:
    s = candidate.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    rearranged = s[4:] + s[:4]
    digits = "".join(str(int(c, 36)) for c in rearranged)
    return int(digits) % 97 == 1


# -- payment cards -------------------------------------------------------------------------

_CARD = re.compile(r"(?=[2-6])(?<![\w.,/:+-])[2-6]\d{3}(?:[ -]?\d){9,15}(?!\w|[.,/: -]\d)")


# How printed card numbers are grouped: 4-4-4-4 (most), 4-6-5 (Amex), 4-6-4 (Diners), 19 digits.
_CARD_GROUPS = {(4, 4, 4, 4), (4, 6, 5), (4, 6, 4), (4, 4, 4, 4, 3)}


def _luhn_ok(candidate: str) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    seps = {c for c in candidate if not c.isdigit()}
    if len(seps) > 1:  # "4111 1111-1111 1111" is not how anyone writes a card
        return False
    if seps and tuple(len(g) for g in re.split(r"[ -]", candidate)) not in _CARD_GROUPS:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# -- IP addresses --------------------------------------------------------------------------

_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f.]*(?![\w:])")
_IPV4 = re.compile(
    r"(?=\d)(?<![\w.])(?<!\bv)(?<!version\s)(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d|\w|\.\w)"
)


def _ipv6_ok(candidate: str) -> bool:
    # A real address has "::" or all eight groups; times (12:30:45) and MACs have neither.
    if "::" not in candidate and candidate.count(":") < 7:
        return False
    # Three groups at least: "::1" and Python slices such as "1::2" are not worth masking.
    groups = [g for g in re.split(r"[:.]", candidate) if g]
    if len(groups) < 3 or not any(c.isdigit() for c in candidate):
        return False
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    return True


def _ipv4_ok(candidate: str) -> bool:
    try:
        ipaddress.IPv4Address(candidate)
    except ValueError:
        return False
    return True


# -- phone numbers -------------------------------------------------------------------------

_PHONE = re.compile(
    r"""
    (?=[+(0-9])(?<![\w+.,/:-])
    (?:
        \+\d{1,3}(?:[\ .-]?\(\d{1,4}\))?(?:[\ .-]?\d{1,4}){2,5}  # +44 20 7946 0958, +1-555-...
      | \(\d{3}\)\ ?\d{3}[\ .-]\d{4}                          # (555) 123-4567
      | \d{3}([.-])\d{3}\1\d{4}                               # 555-123-4567, 555.123.4567
      | \d{3}\ \d{3}\ \d{4}                                   # 555 123 4567
      | 0\d{1,4}(?:[\ -]\d{2,4}){2,4}                         # 020 7946 0958, 06 12 34 56 78
      | 0\d{2,4}[/]\d{4,8}                                    # 030/12345678
    )
    (?![\w]|[.,:/-]\d)
    """,
    re.VERBOSE,
)
_PHONE_LABELLED = re.compile(
    r"(?i:(?=[ptmcfw])\b(?:phone|tel|telephone|mobile|cell|fax|whatsapp|call\ me\ at)\b\.?\s*"
    r"(?:no\.?|number|\#)?\s*[:=]?\s*)(?P<value>\+?\d[\d\ .()-]{5,18}\d)(?!\w)"
)


def _phone_ok(candidate: str) -> bool:
    digits = sum(c.isdigit() for c in candidate)
    if candidate.startswith("+"):
        return 8 <= digits <= 15
    return 9 <= digits <= 12


def _labelled_phone_ok(candidate: str) -> bool:
    digits = sum(c.isdigit() for c in candidate)
    return 7 <= digits <= 15


# -- the redactor --------------------------------------------------------------------------


class _Rule(NamedTuple):
    kind: str
    pattern: re.Pattern[str]
    check: Callable[[str], bool] | None = None
    """Validates a candidate (checksums, parsing); ``None``: the pattern is proof enough."""
    group: str | None = None
    """Mask only this group (the value after ``api_key=``), not the whole match."""
    gate: Callable[[str], bool] | None = None
    """A cheap test on the whole text that must pass before the pattern is worth running."""


def _has_assignment(text: str) -> bool:
    return "=" in text or ":" in text


def _has_scheme(text: str) -> bool:
    return "Bearer" in text or "Basic" in text


def _has_at(text: str) -> bool:
    return "@" in text


def _has_ipv6_shape(text: str) -> bool:
    return "::" in text or text.count(":") >= 7


def _has_dot(text: str) -> bool:
    return "." in text


_RULES: tuple[_Rule, ...] = (
    _Rule("secret", _SECRET_WHOLE),
    _Rule("secret", _SECRET_SCHEME, _token_like, "value", _has_scheme),
    _Rule("secret", _SECRET_ASSIGNED, None, "value", _has_assignment),
    _Rule("email", _EMAIL, None, None, _has_at),
    _Rule("iban", _IBAN, _iban_ok),
    _Rule("card", _CARD, _luhn_ok),
    _Rule("ip", _IPV6, _ipv6_ok, None, _has_ipv6_shape),
    _Rule("ip", _IPV4, _ipv4_ok, None, _has_dot),
    _Rule("phone", _PHONE_LABELLED, _labelled_phone_ok, "value"),
    _Rule("phone", _PHONE, _phone_ok),
)


def _placeholder(kind: str) -> str:
    return f"[{kind.upper()}]"


class Redactor:
    """Masks the chosen kinds of personal data (all of ``KINDS`` by default)."""

    def __init__(self, kinds: Iterable[str] | None = None) -> None:
        chosen = set(kinds) if kinds else set(KINDS)
        unknown = chosen - set(KINDS)
        if unknown:
            raise ValueError(f"unknown PII kinds: {sorted(unknown)}")
        self._rules = tuple(r for r in _RULES if r.kind in chosen)

    def redact(self, text: str) -> tuple[str, list[str]]:
        """The text with each finding replaced by its placeholder, and the kinds found."""
        found: list[str] = []
        for rule in self._rules:
            if rule.gate is None or rule.gate(text):
                text = self._apply(text, rule.kind, rule.pattern, rule.check, rule.group, found)
        return text, found

    @staticmethod
    def _apply(
        text: str,
        kind: str,
        pattern: re.Pattern[str],
        check: Callable[[str], bool] | None,
        group: str | None,
        found: list[str],
    ) -> str:
        placeholder = _placeholder(kind)
        parts: list[str] = []
        last = 0
        for m in pattern.finditer(text):
            start, end = m.span(group) if group else m.span()
            value = text[start:end]
            if "[" in value or (check is not None and not check(value)):
                continue
            parts.append(text[last:start])
            parts.append(placeholder)
            last = end
        if not parts:
            return text
        parts.append(text[last:])
        if kind not in found:
            found.append(kind)
        return "".join(parts)

    def redact_messages(self, messages: Sequence[Any]) -> tuple[list[Any], list[str]]:
        """Redact the text of OpenAI chat messages (dicts or msgspec Structs).

        String contents and ``text`` content parts are rewritten; other parts (images, audio)
        and other fields are kept. The input is not modified: changed messages are copies.
        """
        found: list[str] = []
        out: list[Any] = []
        for message in messages:
            content = _get(message, "content")
            new_content = self._redact_content(content, found)
            out.append(message if new_content is content else _with(message, content=new_content))
        return out, found

    def _redact_content(self, content: Any, found: list[str]) -> Any:
        if isinstance(content, str):
            return self._redact_into(content, found)
        if not isinstance(content, list):
            return content
        changed = False
        parts: list[Any] = []
        for part in content:
            text = _get(part, "text")
            if _get(part, "type") == "text" and isinstance(text, str):
                new_text = self._redact_into(text, found)
                if new_text is not text:
                    part = _with(part, text=new_text)
                    changed = True
            parts.append(part)
        return parts if changed else content

    def _redact_into(self, text: str, found: list[str]) -> str:
        new_text, kinds = self.redact(text)
        for kind in kinds:
            if kind not in found:
                found.append(kind)
        return new_text if kinds else text


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _with(obj: Any, **changes: Any) -> Any:
    """A copy of a dict or Struct with fields replaced."""
    if isinstance(obj, Mapping):
        return {**obj, **changes}
    if isinstance(obj, msgspec.Struct):
        return msgspec.structs.replace(obj, **changes)
    raise TypeError(f"cannot redact a message of type {type(obj).__name__}")


_DEFAULT: Redactor | None = None


def _default() -> Redactor:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Redactor()
    return _DEFAULT


def redact(text: str) -> tuple[str, list[str]]:
    """Mask every kind of personal data in ``text``; returns the text and the kinds found."""
    return _default().redact(text)


def redact_messages(messages: Sequence[Any]) -> tuple[list[Any], list[str]]:
    """Mask every kind of personal data in the text of OpenAI chat messages."""
    return _default().redact_messages(messages)
