"""The eight InSAR steps, dispatched to a backend (embedded numpy or ESA SNAP).

Each step is a function ``step(inputs, outputs, params, threads, resources)`` where ``inputs``
and ``outputs`` are dicts of named paths (the rule's named ``input:`` / ``output:``), ``params``
the step's parameters (``insar`` config section, plus the ``snap`` section and stack options for
the SNAP backend), ``threads`` and ``resources`` those of the Snakemake job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from ..errors import IsslideError
from ..layout import SYNTH

STEPS = (
    "calibrate",
    "apply_orbit",
    "coregister",
    "interferogram",
    "remove_topographic_phase",
    "goldstein",
    "multilook",
    "terrain_correct",
)


@dataclass(frozen=True)
class Backend:
    """One InSAR backend: everything the workflow needs to know of it, in one entry.

    ``module`` holds ``STEP_FUNCTIONS`` (step name -> function); ``product_suffix`` and
    ``product_is_dir`` the kind of intermediate product (a GeoTIFF file, a BEAM-DIMAP folder);
    ``env`` the conda environment of its rules (``envs/``); ``section`` its own config section
    (beside ``insar``), passed to its steps; ``source`` the stack source it processes;
    ``acquisition_inputs(config, plan, stack, date)`` and ``dem_inputs(config, stack)`` the
    inputs of ``calibrate`` and of the steps that read a DEM; ``steps(config)`` the steps it
    runs; ``planning_check(config)`` what it checks once before any job (or None);
    ``processes`` what it processes, in words (for the messages); ``files_check(config, base)``
    the files of its own config section that must exist before any job (or None).
    """

    name: str
    module: str
    product_suffix: str
    product_is_dir: bool
    env: str
    section: str | None
    source: str
    acquisition_inputs: Callable[[dict, dict, str, str], dict]
    dem_inputs: Callable[[dict, str], dict]
    steps: Callable[[dict], tuple[str, ...]] = lambda config: STEPS
    planning_check: Callable[[dict], object] | None = None
    processes: str = ""
    files_check: Callable[[dict, str], None] | None = None


def _embedded_acquisition(config, plan, stack, date):
    return {
        "slc": f"{SYNTH}/{stack}/slc/{date}.tif",
        "metadata": f"{SYNTH}/{stack}/slc/{date}.json",
    }


def _embedded_dem(config, stack):
    return {"dem": f"{SYNTH}/{stack}/dem.tif"}


def _snap_acquisition(config, plan, stack, date):
    from ..plan import fmt

    day = next(d for d in plan[stack].dates if fmt(d) == date)
    return {"products": [p.path for p in plan[stack].products[day]]}


def _snap_dem(config, stack):
    dem = config["snap"]["dem"]["external_file"]
    return {"dem": dem} if dem else {}


def _snap_steps(config):
    from ..snap.chain import recipe_steps

    return recipe_steps(config["snap"]["recipe"])


def _snap_planning_check(config):
    from ..snap.install import planning_check

    return planning_check(config)


# To add a backend: one entry here (and its module with STEP_FUNCTIONS); README "Extending".
def _snap_files_check(config: dict, base: str) -> None:
    """The files snap.dem and snap.orbit name exist (before any job)."""
    import os

    from ..errors import IsslideError

    def where(path):
        return path if os.path.isabs(path) else os.path.join(base, path)

    snap = config["snap"]
    external = snap["dem"]["external_file"]
    if external and not os.path.exists(where(external)):
        raise IsslideError(
            f"snap.dem.external_file: {external} not found; give the GeoTIFF DEM covering the "
            "stack, or set it to null (SRTM 1Sec HGT, downloaded by SNAP)"
        )
    if external and snap["dem"]["name"] != "External DEM":
        raise IsslideError(
            f"snap.dem.name: '{snap['dem']['name']}' with snap.dem.external_file set; set "
            "snap.dem.name: External DEM to use the file, or external_file: null"
        )
    orbits = snap["orbit"]["directory"]
    if orbits and not os.path.isdir(where(orbits)):
        raise IsslideError(
            f"snap.orbit.directory: {orbits} is not a folder; give the folder of the orbit files "
            "({directory}/S1A/2018/07/*.EOF) or set it to null"
        )


BACKENDS = {
    "embedded": Backend(
        name="embedded",
        module="isslide.insar.embedded",
        product_suffix=".tif",
        product_is_dir=False,
        env="geo.yaml",
        section=None,
        source="simulated",
        acquisition_inputs=_embedded_acquisition,
        dem_inputs=_embedded_dem,
        processes="simulated stacks only",
    ),
    "snap": Backend(
        name="snap",
        module="isslide.snap.steps",
        product_suffix=".snap",
        product_is_dir=True,
        env="snap.yaml",
        section="snap",
        source="products",
        acquisition_inputs=_snap_acquisition,
        dem_inputs=_snap_dem,
        steps=_snap_steps,
        planning_check=_snap_planning_check,
        processes="Sentinel-1 products",
        files_check=_snap_files_check,
    ),
}

# what each stack source is, in words (for the messages); "interferograms" needs no backend
SOURCE_WORDS = {"simulated": "simulated stacks", "products": "Sentinel-1 products"}


def get_backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise IsslideError(
            f"backend: unknown backend '{name}'; expected one of {', '.join(BACKENDS)}"
        )
    return BACKENDS[name]


def get_step(step: str, backend: str):
    if step not in STEPS:
        raise IsslideError(f"unknown InSAR step '{step}'; expected one of {', '.join(STEPS)}")
    module = import_module(get_backend(backend).module)
    return module.STEP_FUNCTIONS[step]


def run_step(step, backend, inputs, outputs, params, threads=1, resources=None) -> None:
    get_step(step, backend)(
        inputs=dict(inputs),
        outputs=dict(outputs),
        params=dict(params),
        threads=int(threads),
        resources=dict(resources or {}),
    )
