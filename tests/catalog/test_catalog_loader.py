"""The loader rejects malformed catalog data, naming the row; it never reads package data here."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuscout.catalog import parse_gpus, parse_prices, read_gpus
from gpuscout.errors import CatalogError

GOOD = """
[[gpu]]
id = "good-a"
name = "Good A"
vendor = "NVIDIA"
segment = "datacenter"
architecture = "Hopper"
compute_capability = "9.0"
release_year = 2022
memory_gb = 80
memory_type = "HBM3"
memory_bandwidth_gbs = 3350
fp32_tflops = 67.0
bf16_tensor_tflops = 989.5
nvlink = true
nvlink_bandwidth_gbs = 900
ecc = true
form_factor = "sxm"
aliases = ["Vendor Good A"]
source = "https://example.com/a"

[[gpu]]
id = "good-b"
name = "Good B"
vendor = "AMD"
segment = "consumer"
architecture = "RDNA"
release_year = 2022
memory_gb = 24
memory_type = "GDDR6"
memory_bandwidth_gbs = 960
fp32_tflops = 61.4
nvlink = false
ecc = false
form_factor = "pcie"
source = ["https://example.com/b1", "https://example.com/b2"]
note = ""
"""


def mutate(old: str, new: str) -> str:
    """GOOD with the first ``old`` in the second row (good-b) replaced by ``new``."""
    head, sep, tail = GOOD.partition('id = "good-b"')
    assert old in sep + tail, old
    return head + (sep + tail).replace(old, new, 1)


def test_good_text_parses() -> None:
    a, b = parse_gpus(GOOD)
    assert a.id == "good-a" and a.source == ("https://example.com/a",)
    assert a.aliases == ("Vendor Good A",)
    assert isinstance(a.memory_gb, float) and a.bf16_tensor_tflops == 989.5
    assert b.compute_capability is None and b.fp64_tflops is None
    assert b.source == ("https://example.com/b1", "https://example.com/b2")


def test_memory_options_are_optional_and_kept_in_order() -> None:
    a, b = parse_gpus(mutate('note = ""', "memory_options_gb = [8, 16, 24]"))
    assert a.memory_options_gb == ()  # one size: no list
    assert b.memory_options_gb == (8.0, 16.0, 24.0)
    assert b.memory_gb == 24


def test_read_gpus_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(GOOD, encoding="utf-8")
    assert [g.id for g in read_gpus(path)] == ["good-a", "good-b"]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("memory_gb = 24\n", "", "missing required key 'memory_gb'"),
        ("memory_gb = 24", 'memory_gb = "24"', "memory_gb must be a number"),
        ("memory_gb = 24", "memory_gb = true", "memory_gb must be a number"),
        ("memory_bandwidth_gbs = 960", "memory_bandwidth_gbs = -960", "between"),
        ("fp32_tflops = 61.4", "fp32_tflops = 0", "fp32_tflops must be between"),
        ('segment = "consumer"', 'segment = "gaming"', "segment 'gaming'"),
        ('vendor = "AMD"', 'vendor = "Nvidia Corp"', "vendor"),
        ('form_factor = "pcie"', 'form_factor = "card"', "form_factor"),
        ('id = "good-b"', 'id = "Good_B"', "kebab-case"),
        ('id = "good-b"', 'id = "good-a"', "id 'good-a' appears twice"),
        ('name = "Good B"', 'name = "good a"', "name"),
        ("release_year = 2022", "release_year = 2022.5", "an integer"),
        ("nvlink = false", 'nvlink = "no"', "true or false"),
        ("nvlink = false", "nvlink = false\nnvlink_bandwidth_gbs = 100", "nvlink is false"),
        ('architecture = "RDNA"', 'architecture = "RDNA"\ncompute_capability = "8.6"', "NVIDIA"),
        ('source = ["https://example.com/b1", "https://example.com/b2"]', "source = []", "URL"),
        ('source = ["https://example.com/b1", "https://example.com/b2"]', 'source = "b"', "URL"),
        ('note = ""', 'note = ""\nmemry_gb = 3', "unknown key"),
        ("fp32_tflops = 61.4", "fp32_tflops = 61.4\nbf16_tensor_tflops = 30.7", "below fp32"),
        ('note = ""', 'aliases = [""]', "non-empty strings"),
        ('note = ""', "memory_options_gb = [16, 8, 24]", "must rise without repeats"),
        ('note = ""', "memory_options_gb = [8, 16]", "end at memory_gb (24)"),
        ('note = ""', "memory_options_gb = [8, 8, 24]", "must rise"),
        ('note = ""', "memory_options_gb = []", "non-empty list of numbers"),
        ('note = ""', 'memory_options_gb = ["8", 24]', "a number"),
        ('note = ""', "memory_options_gb = [0.5, 24]", "between 1 and 2048"),
    ],
)
def test_malformed_row_names_the_row(old: str, new: str, message: str) -> None:
    with pytest.raises(CatalogError) as info:
        parse_gpus(mutate(old, new), origin="test.toml")
    text = info.value.message
    assert message in text
    assert "test.toml" in text
    # The row is named by number (per-row checks) or by id (checks across rows).
    assert "row 2" in text or "'good-a'" in text
    assert info.value.hint  # CatalogError says it is a gpuscout bug, not the user's fault


def test_nvidia_row_needs_compute_capability() -> None:
    text = GOOD.replace('compute_capability = "9.0"\n', "", 1)
    with pytest.raises(CatalogError, match=r"row 1 \(id 'good-a'\).*compute_capability"):
        parse_gpus(text)


def test_bad_compute_capability_format() -> None:
    with pytest.raises(CatalogError, match="must look like"):
        parse_gpus(GOOD.replace('"9.0"', '"sm_90"', 1))


def test_shared_alias_allowed_only_when_memory_differs() -> None:
    # NVML gives the 10 GB and 12 GB RTX 3080 one name; memory tells them apart.
    shared = mutate('note = ""', 'aliases = ["Vendor Good A"]')
    a, b = parse_gpus(shared)
    assert (a.memory_gb, b.memory_gb) == (80, 24) and "Vendor Good A" in b.aliases
    same_memory = shared.replace("memory_gb = 24", "memory_gb = 80")
    with pytest.raises(CatalogError, match="could not tell them apart"):
        parse_gpus(same_memory)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[gpu]\nid = 1", "not valid TOML"),
        ("", "no [[gpu]] tables"),
        ("gpu = 3", "no [[gpu]] tables"),
        ("gpu = [1, 2]", "array of tables"),
        ('version = 2\n[[gpu]]\nid = "x"', "unexpected top-level"),
    ],
)
def test_malformed_file(text: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message.replace("[", "\\[")):
        parse_gpus(text)


PRICE = """
[[price]]
gpu_id = "good-a"
provider = "Cloud"
sku = "1x Good A"
gpus = 1
usd_per_gpu_hour = 2.5
date_seen = "2026-05-07"
source = "https://example.com/price"
"""


def test_prices_parse_and_check_gpu_ids() -> None:
    (price,) = parse_prices(PRICE, known_ids={"good-a"})
    assert price.usd_per_gpu_hour == 2.5 and price.date_seen == "2026-05-07"
    with pytest.raises(CatalogError, match="not in the GPU catalog"):
        parse_prices(PRICE, known_ids={"good-b"})


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('date_seen = "2026-05-07"', 'date_seen = "May 2026"', "YYYY-MM"),
        ('date_seen = "2026-05-07"', 'date_seen = "2026-13"', "YYYY-MM"),
        ("usd_per_gpu_hour = 2.5", "usd_per_gpu_hour = 0", "between"),
        ("gpus = 1", "gpus = 0", "between"),
        ('source = "https://example.com/price"', 'source = "example.com"', "URL"),
        ('provider = "Cloud"', 'provider = ""', "non-empty"),
    ],
)
def test_malformed_price(old: str, new: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message) as info:
        parse_prices(PRICE.replace(old, new))
    assert "row 1" in info.value.message


ROW2 = "t.toml row 2 (id 'good-b'): "


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("nvlink = false", 'nvlink = "no"', "nvlink must be true or false, got 'no'"),
        (
            "release_year = 2022",
            "release_year = 2022.5",
            "release_year must be an integer, got 2022.5",
        ),
        ("release_year = 2022", "release_year = true", "release_year must be an integer, got True"),
        (
            "release_year = 2022",
            "release_year = 2009",
            "release_year must be between 2010 and 2040, got 2009",
        ),
        ("memory_gb = 24", 'memory_gb = "24"', "memory_gb must be a number, got '24'"),
        ("memory_gb = 24", "memory_gb = 4096", "memory_gb must be between 1 and 2048, got 4096"),
        ('note = ""', 'aliases = "B"', "aliases must be a list of non-empty strings, got 'B'"),
        (
            'note = ""',
            'aliases = ["B", " "]',
            "aliases must be a list of non-empty strings, got ['B', ' ']",
        ),
        ('note = ""', "aliases = [1]", "aliases must be a list of non-empty strings, got [1]"),
        (
            'source = ["https://example.com/b1", "https://example.com/b2"]',
            "source = 3",
            "source must be a URL or a non-empty list of URLs, got 3",
        ),
        (
            'source = ["https://example.com/b1", "https://example.com/b2"]',
            'source = ["https://example.com/b1", "ftp://b2"]',
            "source must be a URL or a non-empty list of URLs, "
            "got ['https://example.com/b1', 'ftp://b2']",
        ),
        ('note = ""', "note = 3", "note must be a string, got 3"),
        (
            'architecture = "RDNA"',
            'architecture = "  "',
            "architecture must be a non-empty string, got '  '",
        ),
        (
            'architecture = "RDNA"',
            "architecture = 5",
            "architecture must be a non-empty string, got 5",
        ),
    ],
)
def test_each_kind_of_value_says_what_it_must_be(old: str, new: str, message: str) -> None:
    with pytest.raises(CatalogError) as info:
        parse_gpus(mutate(old, new), origin="t.toml")
    assert info.value.message == ROW2 + message


def test_an_id_that_is_not_kebab_case_is_named_as_written() -> None:
    with pytest.raises(CatalogError) as info:
        parse_gpus(mutate('id = "good-b"', 'id = "Good_B"'), origin="t.toml")
    assert info.value.message == (
        "t.toml row 2 (id 'Good_B'): id must be a kebab-case id such as \"rtx-4090\", got 'Good_B'"
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'source = "https://example.com/price"',
            'source = "example.com"',
            "source must be an http(s) URL, got 'example.com'",
        ),
        (
            'date_seen = "2026-05-07"',
            'date_seen = "2026-13"',
            "date_seen must be a date as YYYY-MM-DD or YYYY-MM, got '2026-13'",
        ),
        ('sku = "1x Good A"', "sku = 1", "sku must be a non-empty string, got 1"),
    ],
)
def test_price_values_say_what_they_must_be(old: str, new: str, message: str) -> None:
    with pytest.raises(CatalogError) as info:
        parse_prices(PRICE.replace(old, new), origin="p.toml")
    assert info.value.message == "p.toml row 1 (good-a, Cloud): " + message


def test_values_are_read_as_their_kind() -> None:
    text = mutate('name = "Good B"', 'name = "  Good B "').replace(
        'note = ""', 'note = " hi "\naliases = [" B2 ", "b-two"]'
    )
    _, b = parse_gpus(text)
    assert (b.name, b.note, b.aliases) == ("Good B", "hi", ("B2", "b-two"))  # stripped
    assert b.release_year == 2022 and type(b.release_year) is int
    assert b.memory_gb == 24.0 and type(b.memory_gb) is float  # an integer in a float column
    assert b.nvlink is False and b.source == ("https://example.com/b1", "https://example.com/b2")
    (price,) = parse_prices(PRICE.replace('date_seen = "2026-05-07"', 'date_seen = "2026-05"'))
    assert (price.date_seen, price.gpus, price.source) == (
        "2026-05",
        1,
        "https://example.com/price",
    )
