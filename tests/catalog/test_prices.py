"""catalog/prices.py: the shipped price records, field-by-field validation, staleness,
overrides and the order override > user file > shipped."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from gpuscout.catalog import load_gpus
from gpuscout.catalog import prices as P
from gpuscout.errors import CatalogError, UsageError

GOOD = {
    "gpu_id": "rtx-3090",
    "kind": "used",
    "usd": 650,
    "date_seen": "2026-11-01",
    "source": "https://example.com/ebay-sold",
}


def test_shipped_prices_are_valid_and_in_the_catalog() -> None:
    records = P.shipped_prices()
    ids = {g.id for g in load_gpus()}
    assert records and all(r.gpu_id in ids and r.origin == "shipped" for r in records)
    assert all(r.source.startswith("https://") for r in records)
    kinds = {r.kind for r in records}
    assert kinds == {"new", "used", "on-demand", "spot", "free"}


def test_shipped_keeps_the_14_cloud_prices_figures() -> None:
    by_key = {r.key: r for r in P.shipped_prices()}
    # figures of cloud_prices.toml, on-demand, USD per GPU-hour
    assert by_key[("rtx-4090", "on-demand", "RunPod")].usd == 0.34
    assert by_key[("h100-sxm5-80gb", "on-demand", "AWS")].usd == 6.88
    assert by_key[("h100-sxm5-80gb", "on-demand", "AWS")].gpus == 8
    assert by_key[("h100-sxm5-80gb", "on-demand", "AWS")].min_billing_s == 60
    assert by_key[("a100-sxm4-40gb", "on-demand", "Lambda")].billing == "minute"
    assert by_key[("t4", "on-demand", "Modal")].billing == "second"


def test_free_tiers_with_their_quotas() -> None:
    free = {(r.gpu_id, r.provider): r for r in P.free_tiers(P.shipped_prices())}
    assert set(free) == {("t4", "Google Colab"), ("t4", "Kaggle"), ("p100-pcie-16gb", "Kaggle")}
    assert all(r.usd == 0 for r in free.values())
    assert free[("t4", "Kaggle")].gpus == 2  # T4 x2
    assert free[("t4", "Kaggle")].quota_hours_per_week == 30
    assert free[("p100-pcie-16gb", "Kaggle")].quota_hours_per_week == 30
    colab = free[("t4", "Google Colab")]
    assert colab.quota_hours_per_week is None  # no fixed quota
    assert "not guaranteed" in colab.quota


@pytest.mark.parametrize(("days", "stale"), [(89, False), (90, False), (91, True)])
def test_stale_after_90_days(days: int, stale: bool) -> None:
    rec = P.parse_rows([GOOD], "t")[0]
    today = dt.date(2026, 11, 1) + dt.timedelta(days=days)
    assert rec.age_days(today) == days
    assert rec.is_stale(today) is stale
    warning = rec.stale_warning(today)
    assert (warning is not None) is stale
    if warning:
        assert "2026-11-01" in warning and "91 days ago" in warning


def test_a_month_only_date_counts_from_the_first() -> None:
    rec = P.parse_rows([{**GOOD, "date_seen": "2026-05"}], "t")[0]
    assert rec.age_days(dt.date(2026, 5, 31)) == 30


BAD_FIELDS = [
    ("gpu_id", "RTX 3090", "gpu_id must be"),
    ("kind", "rented", "kind must be one of new, used, on-demand, spot, free"),
    ("usd", "cheap", "usd must be a number"),
    ("date_seen", "last week", "date_seen must be a date"),
    ("source", "ebay", "source must be an http(s) URL"),
    ("gpus", 0, "gpus must be between 1 and 1024"),
    ("usd_high", 10, "usd_high (10) is below usd (650)"),
    ("billing", "fortnight", "billing must be one of second, minute, hour"),
    ("min_billing_s", -1, "min_billing_s must be between"),
    ("billing_source", "docs", "billing_source must be an http(s) URL"),
    ("quota_hours_per_week", 200, "quota_hours_per_week must be between 0 and 168"),
    ("colour", "green", "unknown field(s) ['colour']"),
]


@pytest.mark.parametrize(("field", "value", "words"), BAD_FIELDS)
def test_a_bad_field_is_named_in_one_line(field: str, value: object, words: str) -> None:
    with pytest.raises(UsageError) as err:
        P.parse_rows([GOOD, {**GOOD, "kind": "new", field: value}], "mine.csv")
    message = err.value.message
    assert message.startswith("mine.csv row 2 (")
    assert words in message and "\n" not in message


def test_missing_fields_and_kind_rules() -> None:
    cases = [
        ({k: v for k, v in GOOD.items() if k != "usd"}, "missing required field 'usd'"),
        ({**GOOD, "kind": "spot", "usd": 0.2}, "needs the provider"),
        ({**GOOD, "kind": "free", "usd": 1, "provider": "X", "quota": "q"}, "usd must be 0"),
        ({**GOOD, "kind": "free", "usd": 0, "provider": "X"}, "needs its quota"),
        ({**GOOD, "usd": 0.5}, "between 1 and 1000000 per card"),
        ({**GOOD, "kind": "on-demand", "provider": "X", "usd": 5000}, "per GPU-hour"),
        ({**GOOD, "gpu_id": "rtx-9999"}, "not in the GPU catalog"),
    ]
    ids = {g.id for g in load_gpus()}
    for row, words in cases:
        with pytest.raises(UsageError, match=words):
            P.parse_rows([row], "f", known_ids=ids)


def test_duplicate_keys_in_one_file_are_an_error() -> None:
    with pytest.raises(UsageError, match="same gpu_id, kind and provider as row 1"):
        P.parse_rows([GOOD, {**GOOD, "usd": 700}], "f")


def test_shipped_file_errors_are_catalog_errors() -> None:
    with pytest.raises(CatalogError, match=r"prices.toml row 1 \(rtx-3090, used\): usd"):
        P.parse_toml(
            '[[price]]\ngpu_id = "rtx-3090"\nkind = "used"\nusd = "x"\n', "prices.toml", "shipped"
        )


def test_parse_price_override() -> None:
    today = dt.date(2026, 12, 1)
    new = P.parse_price_override("rtx-3090=700", today)
    assert (new.gpu_id, new.kind, new.usd, new.origin) == ("rtx-3090", "new", 700.0, "override")
    assert new.date_seen == "2026-12-01"
    used = P.parse_price_override("RTX 3090:used=$650", today)
    assert (used.gpu_id, used.kind, used.usd) == ("rtx-3090", "used", 650.0)
    for bad in ("rtx-3090", "rtx-3090=cheap", "rtx-3090:rented=5", "=700", "rtx-3090=0"):
        with pytest.raises(UsageError):
            P.parse_price_override(bad, today)


def test_override_beats_user_file_beats_shipped(tmp_path: Path) -> None:
    shipped = P.shipped_prices()
    shipped_used = P.street_price(shipped, "rtx-3090", "used")
    assert shipped_used is not None and shipped_used.usd == 700
    P.merge_into_user_file(tmp_path, P.parse_rows([{**GOOD, "usd": 600}], "f"))
    with_user = P.all_prices(tmp_path)
    user = P.street_price(with_user, "rtx-3090", "used")
    assert user is not None and (user.usd, user.origin) == (600, "user")
    override = P.parse_price_override("rtx-3090:used=550")
    top = P.street_price(P.all_prices(tmp_path, [override]), "rtx-3090", "used")
    assert top is not None and (top.usd, top.origin) == (550, "override")
    # other prices are untouched by either
    other = P.street_price(P.all_prices(tmp_path, [override]), "rtx-4090", "new")
    assert other is not None and other.origin == "shipped"


def test_user_cloud_offer_replaces_only_its_provider(tmp_path: Path) -> None:
    row = {**GOOD, "gpu_id": "rtx-4090", "kind": "on-demand", "provider": "RunPod", "usd": 0.6}
    P.merge_into_user_file(tmp_path, P.parse_rows([row], "f"))
    offers = [r for r in P.all_prices(tmp_path) if r.gpu_id == "rtx-4090" and r.is_cloud]
    by = {(r.kind, r.provider): (r.usd, r.origin) for r in offers}
    assert by[("on-demand", "RunPod")] == (0.6, "user")
    assert by[("on-demand", "Vast.ai")] == (0.68, "shipped")
    assert by[("spot", "RunPod")] == (0.22, "shipped")
    cheapest = P.cheapest_cloud(offers, "rtx-4090")
    assert cheapest is not None and cheapest.usd == 0.6


def test_user_file_round_trips(tmp_path: Path) -> None:
    rows = [GOOD, {**GOOD, "kind": "free", "usd": 0, "provider": "K", "quota": 'a "q"'}]
    summary = P.merge_into_user_file(tmp_path, P.parse_rows(rows, "f"))
    assert (len(summary.added), len(summary.replaced), summary.total) == (2, 0, 2)
    back = P.read_user_prices(tmp_path)
    assert [(r.kind, r.usd, r.quota) for r in back] == [("used", 650, ""), ("free", 0, 'a "q"')]
    again = P.merge_into_user_file(tmp_path, P.parse_rows([{**GOOD, "usd": 640}], "f"))
    assert (len(again.added), len(again.replaced), again.total) == (0, 1, 2)


def test_no_user_file_means_no_user_prices(tmp_path: Path) -> None:
    assert P.read_user_prices(tmp_path / "nothing-here") == ()
