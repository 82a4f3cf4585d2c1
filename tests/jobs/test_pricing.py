"""jobs.prices and jobs.import_prices: the user's price file in the data directory
(GPUSCOUT_HOME, set per test by conftest), and imports that write nothing on a bad row."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from gpuscout import jobs
from gpuscout.errors import UsageError

HEADER = "gpu_id,kind,usd,date_seen,source,provider,quota,quota_hours_per_week\n"
CSV_GOOD = HEADER + (
    "rtx-3090,used,640,2026-11-20,https://example.com/sold,,,\n"
    "rtx-4090,on-demand,0.55,2026-11-20,https://example.com/rp,RunPod,,\n"
)


def home() -> Path:
    return Path(os.environ["GPUSCOUT_HOME"])


def test_listing_reads_the_user_file_in_gpuscout_home(tmp_path: Path) -> None:
    src = tmp_path / "mine.csv"
    src.write_text(CSV_GOOD)
    out = jobs.import_prices(src)
    assert out.user_file == str(home() / "prices.toml")
    assert (out.rows, len(out.added), len(out.replaced), out.total) == (2, 2, 0, 2)
    listing = jobs.prices(jobs.PricesOptions(gpu="3090", today=dt.date(2026, 12, 1)))
    assert listing.gpu is not None and listing.gpu.id == "rtx-3090"
    used = [p for p in listing.street if p.price.kind == "used"]
    assert [(p.price.usd, p.price.origin, p.stale) for p in used] == [(640, "user", False)]


def test_override_beats_the_user_file() -> None:
    options = jobs.PricesOptions(gpu="rtx-3090", overrides=("rtx-3090:used=500",))
    (home() / "prices.toml").parent.mkdir(parents=True, exist_ok=True)
    (home() / "prices.toml").write_text(
        '[[price]]\ngpu_id = "rtx-3090"\nkind = "used"\nusd = 640\n'
        'date_seen = "2026-11-20"\nsource = "https://example.com/sold"\n'
    )
    used = [p.price for p in jobs.prices(options).street if p.price.kind == "used"]
    assert [(r.usd, r.origin) for r in used] == [(500, "override")]
    without = [p.price for p in jobs.prices(jobs.PricesOptions(gpu="rtx-3090")).street]
    assert [(r.usd, r.origin) for r in without if r.kind == "used"] == [(640, "user")]


def test_cloud_cheapest_first_and_stale_warnings() -> None:
    listing = jobs.prices(jobs.PricesOptions(gpu="rtx 4090", today=dt.date(2026, 12, 7)))
    usd = [p.price.usd for p in listing.cloud]
    assert usd == sorted(usd) and usd[0] == 0.22  # RunPod spot
    assert all(p.stale for p in listing.cloud)  # seen March to June 2026
    assert len(listing.warnings) == len(listing.street) + len(listing.cloud)
    fresh = jobs.prices(jobs.PricesOptions(gpu="rtx 4090", today=dt.date(2026, 3, 2)))
    assert not any(p.stale for p in fresh.cloud) and fresh.warnings == ()


def test_free_tiers_are_listed() -> None:
    listing = jobs.prices()
    free = {(p.price.gpu_id, p.price.provider): p.price for p in listing.free}
    assert free[("t4", "Kaggle")].quota_hours_per_week == 30
    assert free[("p100-pcie-16gb", "Kaggle")].quota_hours_per_week == 30
    assert ("t4", "Google Colab") in free


def test_import_json_list_and_object(tmp_path: Path) -> None:
    rows = [
        {
            "gpu_id": "t4",
            "kind": "free",
            "usd": 0,
            "provider": "Kaggle",
            "gpus": 2,
            "quota": "30 h a week",
            "quota_hours_per_week": 20,
            "date_seen": "2026-12-01",
            "source": "https://example.com/kaggle",
        },
    ]
    src = tmp_path / "mine.json"
    src.write_text(json.dumps(rows))
    out = jobs.import_prices(src)
    assert (len(out.added), len(out.replaced)) == (1, 0)
    src.write_text(json.dumps({"price": [{**rows[0], "quota_hours_per_week": 25}]}))
    again = jobs.import_prices(src)
    assert (len(again.added), len(again.replaced), again.total) == (0, 1, 1)
    free = [p.price for p in jobs.prices().free if p.price.provider == "Kaggle"]
    t4 = next(r for r in free if r.gpu_id == "t4")
    assert (t4.quota_hours_per_week, t4.origin) == (25, "user")


BAD_CELLS = [
    ("gpu_id", "rtx-9999", "not in the GPU catalog"),
    ("kind", "leased", "kind must be one of"),
    ("usd", "lots", "usd must be a number"),
    ("date_seen", "2026-13-01", "date_seen must be a date"),
    ("source", "word of mouth", "source must be an http(s) URL"),
    ("provider", "", "needs the provider"),
    ("quota_hours_per_week", "-3", "quota_hours_per_week must be between"),
]


@pytest.mark.parametrize(("field", "value", "words"), BAD_CELLS)
def test_one_bad_cell_writes_nothing(tmp_path: Path, field: str, value: str, words: str) -> None:
    src = tmp_path / "mine.csv"
    src.write_text(CSV_GOOD)
    jobs.import_prices(src)
    before = (home() / "prices.toml").read_bytes()
    good = {
        "gpu_id": "a10",
        "kind": "spot",
        "usd": "0.3",
        "date_seen": "2026-11-20",
        "source": "https://example.com/x",
        "provider": "Lambda",
        "quota": "",
        "quota_hours_per_week": "",
    }
    bad = {**good, field: value}
    cols = HEADER.strip().split(",")
    lines = [",".join(str(r[c]) for c in cols) for r in (good, bad)]
    src.write_text(HEADER + "\n".join(lines) + "\n")
    with pytest.raises(UsageError) as err:
        jobs.import_prices(src)
    assert f"{src} row 2 (" in err.value.message and words in err.value.message
    assert (home() / "prices.toml").read_bytes() == before


def test_bad_files_are_refused(tmp_path: Path) -> None:
    for name, text, words in (
        ("x.json", "{not json", "not valid JSON"),
        ("x.csv", "a,b\n1,2\n", "must name the columns"),
        ("x.txt", "", "must be .csv, .json or .toml"),
        ("empty.csv", HEADER, "has no prices"),
    ):
        (tmp_path / name).write_text(text)
        with pytest.raises(UsageError, match=words):
            jobs.import_prices(tmp_path / name)
    assert not (home() / "prices.toml").exists()
