"""Unit tests of the foundation: product names, pairing, config validation."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from isslide.config import check_config, fill_defaults, load_config
from isslide.errors import IsslideError
from isslide.plan import expected_dates, plan_stacks
from isslide.sentinel1 import find_products, group_slices, parse_product_name

NAME = "S1A_IW_SLC__1SDV_20180702T054020_20180702T054047_022608_027309_8A2B.zip"


def product_names(n=20, start=dt.datetime(2018, 7, 2, 5, 40, 20), track=136):
    """n names of real-product form, S1A/S1B alternating every 6 days on one relative orbit."""
    names = []
    for k in range(n):
        t = start + dt.timedelta(days=6 * k)
        mission, offset = ("S1A", 73) if k % 2 == 0 else ("S1B", 27)
        orbit = 20000 + ((track - 1 + offset - 20000) % 175) + 175 * k
        stop = t + dt.timedelta(seconds=27)
        names.append(
            f"{mission}_IW_SLC__1SDV_{t:%Y%m%dT%H%M%S}_{stop:%Y%m%dT%H%M%S}_{orbit:06d}_02{k:04X}_{k:04X}.zip"
        )
    return names


def test_parse_real_product_name():
    p = parse_product_name(f"/data/s1/{NAME}")
    assert p.mission == "S1A"
    assert p.mode == "IW" and p.product_type == "SLC" and p.level == 1
    assert p.product_class == "S"
    assert p.polarisations == ("VV", "VH")
    assert p.start == dt.datetime(2018, 7, 2, 5, 40, 20)
    assert p.stop == dt.datetime(2018, 7, 2, 5, 40, 47)
    assert p.absolute_orbit == 22608
    assert p.datatake_id == "027309" and p.product_id == "8A2B"
    # ESA: S1A relative orbit = (absolute - 73) mod 175 + 1
    assert p.relative_orbit == (22608 - 73) % 175 + 1 == 136
    assert p.date == dt.date(2018, 7, 2)


def test_parse_safe_and_s1b():
    p = parse_product_name(
        "S1B_IW_SLC__1SSV_20180708T053937_20180708T054004_011677_015799_1F2C.SAFE"
    )
    assert p.mission == "S1B" and p.polarisations == ("VV",)
    assert p.relative_orbit == (11677 - 27) % 175 + 1


@pytest.mark.parametrize(
    "bad",
    [
        "S1A_IW_SLC_1SDV_20180702T054020_20180702T054047_022608_027309_8A2B.zip",
        "S1A_IW_SLC__1SDV_20181302T054020_20181302T054047_022608_027309_8A2B.zip",
        "S1A_IW_SLC__1SDV_20180702T054020_20180702T054010_022608_027309_8A2B.zip",
        "notes.txt",
    ],
)
def test_malformed_name_names_the_file(bad):
    with pytest.raises(IsslideError, match=bad.split("_")[0]) as info:
        parse_product_name(f"/x/{bad}")
    assert "\n" not in str(info.value)
    assert bad in str(info.value)


def test_group_slices_same_date_and_track(tmp_path):
    names = [
        "S1A_IW_SLC__1SDV_20180702T054020_20180702T054047_022608_027309_8A2B.zip",
        "S1A_IW_SLC__1SDV_20180702T054045_20180702T054112_022608_027309_9C1D.zip",
        "S1A_IW_SLC__1SDV_20180714T054021_20180714T054048_022783_0277F1_ABCD.zip",
    ]
    for n in names:
        (tmp_path / n).touch()
    groups = group_slices(find_products(str(tmp_path / "*.zip")))
    assert [len(v) for v in groups.values()] == [2, 1]
    assert list(groups)[0] == (136, dt.date(2018, 7, 2))


def test_find_products_errors(tmp_path):
    with pytest.raises(IsslideError, match="does not exist"):
        find_products(str(tmp_path / "nope" / "*.zip"))
    with pytest.raises(IsslideError, match="no Sentinel-1 product matches"):
        find_products(str(tmp_path / "*.zip"))
    with pytest.raises(IsslideError, match="does not exist"):
        find_products([str(tmp_path / NAME)])


def isslide_config(tmp_path, n=20, drop=()):
    for k, name in enumerate(product_names(n)):
        if k not in drop:
            (tmp_path / name).touch()
    cfg = yaml.safe_load(open("config/isslide.yaml"))
    cfg["stacks"]["alps"]["products"] = str(tmp_path / "*.zip")
    return cfg


def test_isslide_plan_54_pairs(tmp_path, repo, monkeypatch):
    monkeypatch.chdir(repo)
    cfg = fill_defaults(isslide_config(tmp_path))
    check_config(cfg)
    stack = plan_stacks(cfg)["alps"]
    assert len(stack.dates) == 20 and stack.track == 136
    assert [len(stack.pairs_for_delay(d)) for d in (6, 12, 18)] == [19, 18, 17]
    assert all(p.delay in (6, 12, 18) for p in stack.pairs)
    assert stack.report() == []


def test_missing_acquisition_drops_only_its_pairs(tmp_path, repo, monkeypatch):
    monkeypatch.chdir(repo)
    cfg = fill_defaults(isslide_config(tmp_path, drop=(5,)))
    stack = plan_stacks(cfg)["alps"]
    missing = dt.date(2018, 7, 2) + dt.timedelta(days=30)
    assert stack.missing == [missing]
    # each delay loses the two pairs that use the missing date
    assert [len(stack.pairs_for_delay(d)) for d in (6, 12, 18)] == [17, 16, 15]
    assert len(stack.dropped) == 6
    assert all(missing in m for _, m in stack.dropped)
    assert any(missing.isoformat() in line for line in stack.report())


def test_stack_with_fewer_than_two_acquisitions(tmp_path, repo, monkeypatch):
    monkeypatch.chdir(repo)
    cfg = fill_defaults(isslide_config(tmp_path, n=1))
    with pytest.raises(IsslideError, match="at least two"):
        plan_stacks(cfg)


def test_several_tracks_need_a_choice(tmp_path, repo, monkeypatch):
    monkeypatch.chdir(repo)
    cfg = isslide_config(tmp_path, n=4)
    other = "S1A_IW_SLC__1SDV_20180702T172020_20180702T172047_022615_027311_1111.zip"
    (tmp_path / other).touch()
    with pytest.raises(IsslideError, match="several tracks"):
        plan_stacks(fill_defaults(cfg))
    cfg["stacks"]["alps"]["track"] = 136
    stack = plan_stacks(fill_defaults(cfg))["alps"]
    assert any("track 143" in line for line in stack.report())


def test_demo_config_plan(repo, monkeypatch):
    monkeypatch.chdir(repo)
    cfg = load_config("config/config.yaml")
    stack = plan_stacks(cfg)["demo"]
    assert stack.dates == expected_dates(cfg)
    assert [len(stack.pairs_for_delay(d)) for d in cfg["delays"]] == [5, 4, 3]


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"bakend": "snap"}, "unknown key 'bakend'"),
        ({"seed": "abc"}, "seed: expected integer"),
        ({"backend": "gamma"}, "backend: expected one of 'embedded', 'snap'"),
        ({"delays": [6, 7]}, "7 days is not a multiple of revisit_days"),
        ({"insar": {"multilook": {"range": "eight"}}}, "insar.multilook.range: expected integer"),
        ({"insar": {"goldstein": {"alpah": 1}}}, "unknown key 'insar.goldstein.alpah'"),
        ({"dates": {"start": "2018-07-30", "end": "2018-07-02"}}, "before dates.start"),
    ],
)
def test_config_errors_name_the_key(tmp_path, repo, monkeypatch, patch, message):
    monkeypatch.chdir(repo)
    cfg = yaml.safe_load(open("config/config.yaml"))
    cfg.update(patch)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(IsslideError) as info:
        load_config(path)
    text = str(info.value)
    assert message in text and str(path) in text and "\n" not in text


def test_defaults_are_filled(repo, monkeypatch):
    monkeypatch.chdir(repo)
    cfg = load_config("config/config.yaml")
    assert cfg["insar"]["multilook"] == {"range": 8, "azimuth": 2}
    assert cfg["insar"]["coherence_window"] == {"range": 10, "azimuth": 3}
    assert cfg["insar"]["pixel_spacing_deg"] == pytest.approx(1.315e-4)
    assert cfg["stacks"]["demo"]["subswaths"] == ["IW1", "IW2", "IW3"]
