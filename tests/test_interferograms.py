"""Interferograms made elsewhere: pair planning from path patterns, import onto the workflow grid
(any CRS, complex resampling of the wrapped phase, scaled coherence, nodata)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer

from isslide.config import fill_defaults
from isslide.errors import IsslideError
from isslide.files import write_raster
from isslide.interferograms import import_interferogram, stack_grid
from isslide.plan import plan_stacks

PATTERN = {
    "phase": "ifg/{reference}_{secondary}/phase.tif",
    "coherence": "ifg/{reference}_{secondary}/coherence.tif",
}


def config(**ifg):
    return fill_defaults(
        {
            "revisit_days": 6,
            "delays": [12],
            "dates": {"start": "2020-01-01", "end": "2020-02-01"},
            "stacks": {
                "ext": {
                    "source": "interferograms",
                    "interferograms": {**PATTERN, **ifg},
                    "zones": {"z": {"bbox": [0, 0, 1, 1], "role": "train"}},
                }
            },
        }
    )


def touch_pair(root, ref, sec, coherence=True):
    d = root / "ifg" / f"{ref}_{sec}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "phase.tif").write_bytes(b"")
    if coherence:
        (d / "coherence.tif").write_bytes(b"")


def test_pairs_are_planned_from_the_files_found(tmp_path):
    touch_pair(tmp_path, "20200101", "20200113")  # 12 d: kept
    touch_pair(tmp_path, "20200107", "20200119")  # 12 d: kept
    touch_pair(tmp_path, "20200101", "20200107")  # 6 d: not in delays
    touch_pair(tmp_path, "20200125", "20200206")  # outside dates
    plan = plan_stacks(config(), base=str(tmp_path))["ext"]
    assert [p.name for p in plan.pairs] == ["20200101_20200113", "20200107_20200119"]
    assert {p.delay for p in plan.pairs} == {12}
    assert len(plan.ignored) == 2 and len(plan.report()) == 2


@pytest.mark.parametrize(
    "case, message",
    [
        ("no_file", "stacks.ext.interferograms.phase: no file matches"),
        ("no_coherence", "coherence file of interferogram 20200101_20200113 not found"),
        ("placeholder", "lacks {secondary}"),
        ("unknown", "unknown placeholder {date}"),
        ("wrong_delay", "none with a delay in delays"),
    ],
)
def test_bad_patterns_are_one_line(tmp_path, case, message):
    cfg = config()
    if case == "no_coherence":
        touch_pair(tmp_path, "20200101", "20200113", coherence=False)
    if case == "placeholder":
        cfg = config(phase="ifg/{reference}/phase.tif")
    if case == "unknown":
        cfg = config(coherence="ifg/{date}/c.tif")
    if case == "wrong_delay":
        touch_pair(tmp_path, "20200101", "20200107")
    with pytest.raises(IsslideError, match=message.replace("{", r"\{").replace("}", r"\}")):
        plan_stacks(cfg, base=str(tmp_path))


def utm_pair(tmp_path, scale=1.0, dtype=np.float32):
    """A UTM 31N interferogram: a phase ramp with many wraps, a nodata corner."""
    t = Affine(20.0, 0, 500_000.0, 0, -20.0, 5_000_000.0)
    rows, cols = np.mgrid[:150, :160]
    x, y = t @ (cols + 0.5, rows + 0.5)
    true = 0.004 * (x - 500_000.0) + 0.0015 * (5_000_000.0 - y)
    phase = np.angle(np.exp(1j * true)).astype(np.float32)
    coh = (0.3 + 0.6 * cols / 160).astype(np.float32)
    phase[:30, :30] = -9999.0
    coh[:30, :30] = -9999.0
    coh_out = (coh * scale).astype(dtype) if scale != 1 else coh
    write_raster(str(tmp_path / "phase.tif"), phase, t, "EPSG:32631", -9999.0)
    write_raster(str(tmp_path / "coh.tif"), coh_out, t, "EPSG:32631", -9999 if scale == 1 else 0)
    return str(tmp_path / "phase.tif"), str(tmp_path / "coh.tif")


def outputs(tmp_path):
    return {k: str(tmp_path / f"{k}.out.tif") for k in ("phase", "coherence", "layover_shadow")}


def test_import_resamples_the_phase_as_a_complex_number(tmp_path):
    phase, coh = utm_pair(tmp_path)
    grid = stack_grid([phase], 1.315e-4)
    out = outputs(tmp_path)
    import_interferogram(phase, coh, out, grid)
    with rasterio.open(out["phase"]) as p, rasterio.open(out["coherence"]) as c:
        assert p.crs.to_epsg() == 4326 and p.transform.a == pytest.approx(1.315e-4)
        ph, co, t = p.read(1), c.read(1), p.transform
    with rasterio.open(out["layover_shadow"]) as m:
        mask = m.read(1)
    ok = ph != -9999.0
    assert (mask[ok] == 0).all() and (mask[~ok] == 255).all() and (co[~ok] == -9999.0).all()
    assert 0.6 < ok.mean() < 1.0  # nodata corner and outside the rotated UTM footprint
    rows, cols = np.nonzero(ok)
    lon, lat = t @ (cols + 0.5, rows + 0.5)
    x, y = Transformer.from_crs(4326, 32631, always_xy=True).transform(lon, lat)
    true = 0.004 * (x - 500_000.0) + 0.0015 * (5_000_000.0 - y)
    err = np.abs(np.angle(np.exp(1j * (ph[ok] - true))))
    inner = (x > 500_700) & (x < 503_100) & (y < 4_999_300) & (y > 4_997_100)
    assert err[inner].max() < 0.1, err[inner].max()  # an angle interpolation errs by ~pi
    assert (np.abs(ph[ok]) <= np.pi + 1e-6).all() and (co[ok] >= 0).all() and (co[ok] <= 1).all()


def test_scaled_coherence(tmp_path):
    phase, coh = utm_pair(tmp_path, scale=255, dtype=np.uint8)
    grid = stack_grid([phase], 1.315e-4)
    with pytest.raises(IsslideError, match="set stacks.ext.interferograms.coherence_scale 255"):
        import_interferogram(
            phase, coh, outputs(tmp_path), grid,
            scale_key="stacks.ext.interferograms.coherence_scale",
        )  # fmt: skip
    import_interferogram(phase, coh, outputs(tmp_path), grid, coherence_scale=255)
    with rasterio.open(outputs(tmp_path)["coherence"]) as c:
        co = c.read(1, masked=True)
    assert 0.25 < co.min() and co.max() <= 1.0
