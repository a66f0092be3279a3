"""The validators behind the findings: Luhn, card issuers, SSN ranges, mod-97, NI numbers, JWT."""

from __future__ import annotations

import base64

import pytest

from tollway.governance.checks import (
    card_ok,
    iban_ok,
    is_placeholder,
    jwt_header_ok,
    luhn_ok,
    nino_ok,
    ssn_ok,
)


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111111",  # Visa
        "4012888888881881",
        "5555555555554444",  # Mastercard
        "2223003122003222",  # Mastercard 2-series
        "378282246310005",  # Amex
        "6011111111111117",  # Discover
        "3530111333300000",  # JCB
        "30569309025904",  # Diners
        "6200000000000005",  # UnionPay
    ],
)
def test_test_card_numbers_pass(number: str) -> None:
    assert luhn_ok(number) and card_ok(number)


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111112",  # Luhn fails
        "1234567890123452",  # Luhn holds, no issuer starts with 1
        "411111111111111",  # Visa has no 15-digit numbers
        "3782822463100051",  # Amex is 15 digits
    ],
)
def test_non_cards_fail(number: str) -> None:
    assert luhn_ok("1234567890123452")
    assert not card_ok(number)


def test_ssn_ranges() -> None:
    assert ssn_ok("536228471")
    for bad in ("000123456", "666123456", "912345678", "123004567", "123450000", "12345678"):
        assert not ssn_ok(bad), bad


def test_iban_mod_97() -> None:
    for good in ("GB82WEST12345698765432", "DE89370400440532013000", "NL91ABNA0417164300"):
        assert iban_ok(good)
    for bad in ("GB82WEST12345698765433", "DE8937040044053201300", "XX82WEST12345698765432"):
        assert not iban_ok(bad)


def test_uk_national_insurance_numbers() -> None:
    assert nino_ok("AB123456C")
    for bad in ("QQ123456C", "GB123456A", "AO123456A", "AB123456E", "AB12345C"):
        assert not nino_ok(bad), bad


def test_jwt_header() -> None:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    assert jwt_header_ok(b64(b'{"alg":"RS256","kid":"k1"}'))
    assert not jwt_header_ok(b64(b'{"typ":"JWT"}'))
    assert not jwt_header_ok(b64(b"[1, 2]"))
    assert not jwt_header_ok("eyJ!!!")


@pytest.mark.parametrize(
    "value",
    ["YOUR_API_KEY", "<your-key>", "${DB_PASSWORD}", "********", "xxxxxxxx", "changeme", "null"],
)
def test_placeholders(value: str) -> None:
    assert is_placeholder(value)


@pytest.mark.parametrize("value", ["hunter2!", "Tr0ub4dor&3", "a8f5f167f44f4964e6c998dee827110c"])
def test_not_placeholders(value: str) -> None:
    assert not is_placeholder(value)
