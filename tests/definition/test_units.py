import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookline.definition._units import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("5s", 5.0),
        ("1.5s", 1.5),
        ("10m", 600.0),
        ("2h", 7200.0),
        ("3d", 259_200.0),
        ("0s", 0.0),
        (" 5s ", 5.0),
        ("5 s", 5.0),
        ("5S", 5.0),
        ("1h30m", 5400.0),
        ("1m 30s", 90.0),
        (".5s", 0.5),
        (5, 5.0),
        (0, 0.0),
        (2.5, 2.5),
    ],
)
def test_parse_duration_reads_the_documented_forms(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_parse_duration_returns_a_float_for_integers() -> None:
    assert type(parse_duration(5)) is float


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("soon", "not a duration"),
        ("", "empty"),
        ("   ", "empty"),
        ("-5s", "negative"),
        (-1, "negative"),
        (-0.5, "negative"),
        (True, "boolean"),
        (False, "boolean"),
        ("5", "no unit"),
        ("1.5", "no unit"),
        ("5w", "unknown duration unit 'w'"),
        ("5 seconds", "unknown duration unit 'seconds'"),
        ("5s5", "not a duration"),
        ("s", "not a duration"),
        (math.inf, "finite"),
        (math.nan, "finite"),
        (None, "not NoneType"),
        ([5], "not list"),
    ],
)
def test_parse_duration_refuses_with_a_clear_message(value: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_duration(value)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("100B", 100),
        ("10KB", 10_000),
        ("1MB", 1_000_000),
        ("1GB", 1_000_000_000),
        ("512KiB", 524_288),
        ("1MiB", 1_048_576),
        ("2GiB", 2 * 1024**3),
        ("1mib", 1_048_576),
        ("1 MiB", 1_048_576),
        ("1.5KiB", 1536),
        ("0B", 0),
        (4096, 4096),
        (0, 0),
    ],
)
def test_parse_size_reads_the_documented_forms(text: object, size: int) -> None:
    assert parse_size(text) == size
    assert type(parse_size(text)) is int


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("huge", "not a size"),
        ("", "empty"),
        ("-1KiB", "negative"),
        (-1, "negative"),
        (True, "boolean"),
        ("1024", "no unit"),
        ("1 gallon", "unknown size unit 'gallon'"),
        ("1XB", "unknown size unit 'xb'"),
        (1.5, "whole number"),
        (None, "whole number"),
    ],
)
def test_parse_size_refuses_with_a_clear_message(value: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_size(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5s"),
        (0.25, "250ms"),
        (0, "0s"),
        (600, "10m"),
        (7200, "2h"),
        (259_200, "3d"),
        (90, "90s"),
        (1.5, "1.5s"),
        (-5, "-5s"),
    ],
)
def test_format_duration_writes_what_a_definition_would(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=0, max_value=10**10))
def test_format_duration_reads_back_to_the_millisecond(millis: int) -> None:
    seconds = millis / 1000
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=1e-6)


def test_format_duration_does_not_round_tiny_durations_to_zero() -> None:
    assert format_duration(0.0001) != "0s"


@pytest.mark.parametrize(
    ("size", "text"),
    [(1_048_576, "1MiB"), (524_288, "512KiB"), (10_000, "10KB"), (100, "100B"), (0, "0B")],
)
def test_format_size_writes_what_a_definition_would(size: int, text: str) -> None:
    assert format_size(size) == text


@given(st.integers(min_value=0, max_value=2**50))
def test_format_size_reads_back_exactly(size: int) -> None:
    assert parse_size(format_size(size)) == size
