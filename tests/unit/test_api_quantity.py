"""Quantities, names and times: the small exact helpers of minikube_py.api."""

import random
from decimal import Decimal

import pytest

from minikube_py.api import names
from minikube_py.api.quantity import cpu_millis, format_millis, memory_bytes, parse_quantity
from minikube_py.api.times import format_time, human_duration, parse_time


@pytest.mark.parametrize(
    "text, value",
    [
        ("1", Decimal(1)),
        ("500m", Decimal("0.5")),
        ("0.1", Decimal("0.1")),
        ("100m", Decimal("0.1")),
        ("250n", Decimal("0.00000025")),
        ("3u", Decimal("0.000003")),
        ("1k", Decimal(1000)),
        ("2M", Decimal(2_000_000)),
        ("1G", Decimal(10**9)),
        ("1T", Decimal(10**12)),
        ("1P", Decimal(10**15)),
        ("1E", Decimal(10**18)),
        ("1Ki", Decimal(1024)),
        ("64Mi", Decimal(64 * 2**20)),
        ("1.5Gi", Decimal(3 * 2**29)),
        ("1Ti", Decimal(2**40)),
        ("1Pi", Decimal(2**50)),
        ("1Ei", Decimal(2**60)),
        ("1e3", Decimal(1000)),
        ("1E3", Decimal(1000)),
        ("12e-3", Decimal("0.012")),
        (".5", Decimal("0.5")),
        ("-1", Decimal(-1)),
        ("+2", Decimal(2)),
        (2, Decimal(2)),
    ],
)
def test_parse_quantity_is_exact(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1x", "1 Mi", "Mi", "1.2.3", "1KiB", "--1", "1e", None, True])
def test_parse_quantity_rejects_malformed_text_with_a_clear_message(text):
    with pytest.raises(ValueError, match="quantit"):
        parse_quantity(text)


@pytest.mark.parametrize(
    "text, millis", [("1", 1000), ("250m", 250), ("1.5", 1500), ("0.0001", 1), ("100m", 100), ("2k", 2_000_000)]
)
def test_cpu_millis_rounds_up(text, millis):
    assert cpu_millis(text) == millis


@pytest.mark.parametrize(
    "text, size", [("64Mi", 67108864), ("1G", 10**9), ("128974848", 128974848), ("129e6", 129000000), ("1.5", 2), ("1Ki", 1024)]
)
def test_memory_bytes_rounds_up(text, size):
    assert memory_bytes(text) == size


def test_format_millis_prints_whole_cores_without_suffix():
    assert (format_millis(1500), format_millis(2000), format_millis(0)) == ("1500m", "2", "0")


# --- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, label, subdomain",
    [("web", True, True), ("web-1", True, True), ("a.b", False, True), ("Web", False, False), ("-web", False, False),
     ("web-", False, False), ("", False, False), ("a" * 63, True, True), ("a" * 64, False, True), ("a_b", False, False)],
)
def test_dns1123_names(text, label, subdomain):
    assert names.is_dns1123_label(text) is label
    assert names.is_dns1123_subdomain(text) is subdomain


@pytest.mark.parametrize(
    "key, valid",
    [("app", True), ("app.kubernetes.io/name", True), ("example.com/My_Key", True), ("/x", False), ("a/b/c", False),
     ("Example.com/x", False), ("x" * 64, False), ("-a", False), ("a b", False)],
)
def test_label_keys(key, valid):
    assert names.is_label_key(key) is valid


@pytest.mark.parametrize("value, valid", [("", True), ("v1.2_beta-3", True), ("-v", False), ("a b", False), ("x" * 64, False)])
def test_label_values(value, valid):
    assert names.is_label_value(value) is valid


def test_generate_name_appends_five_safe_characters_and_truncates_the_prefix():
    generated = names.generate_name("web-7d9f-", random.Random(1))
    assert generated.startswith("web-7d9f-") and len(generated) == len("web-7d9f-") + 5
    assert set(generated[-5:]) <= set("bcdfghjklmnpqrstvwxz2456789")
    long_name = names.generate_name("x" * 80)
    assert len(long_name) == 63 and long_name.startswith("x" * 58)


# --- times ----------------------------------------------------------------------------------


def test_format_and_parse_time_round_trip_at_second_precision():
    assert format_time(1_800_000_000.9) == "2027-01-15T08:00:00Z"
    assert parse_time("2027-01-15T08:00:00Z") == 1_800_000_000
    assert parse_time("2027-01-15T09:00:00.5+01:00") == 1_800_000_000.5


@pytest.mark.parametrize("text", ["yesterday", "2027-01-15T08:00:00", "", 5])
def test_parse_time_rejects_text_that_is_not_rfc3339(text):
    with pytest.raises(ValueError, match="timestamp"):
        parse_time(text)


AGE_TABLE = [
    (-5, "<invalid>"),
    (-1.5, "0s"),
    (0, "0s"),
    (59, "59s"),
    (119, "119s"),
    (120, "2m"),
    (125, "2m5s"),
    (599, "9m59s"),
    (600, "10m"),
    (3 * 3600 - 1, "179m"),
    (3 * 3600, "3h"),
    (5 * 3600 + 3 * 60, "5h3m"),
    (8 * 3600, "8h"),
    (47 * 3600 + 3599, "47h"),
    (48 * 3600, "2d"),
    (3 * 86400 + 4 * 3600, "3d4h"),
    (8 * 86400, "8d"),
    (730 * 86400 - 1, "729d"),
    (730 * 86400, "2y"),
    (367 * 2 * 86400, "2y4d"),
    (8 * 365 * 86400, "8y"),
    (20 * 365 * 86400, "20y"),
]


@pytest.mark.parametrize("seconds, text", AGE_TABLE)
def test_human_duration_matches_kubectl_age(seconds, text):
    assert human_duration(seconds) == text
