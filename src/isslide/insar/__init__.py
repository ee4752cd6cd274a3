"""The eight InSAR steps, dispatched to a backend (embedded numpy or ESA SNAP).

Each step is a function ``step(inputs, outputs, params, threads, resources)`` where ``inputs``
and ``outputs`` are dicts of named paths (the rule's named ``input:`` / ``output:``), ``params``
the step's parameters (``insar`` config section, plus the ``snap`` section and stack options for
the SNAP backend), ``threads`` and ``resources`` those of the Snakemake job.
"""

from __future__ import annotations

from importlib import import_module

from ..errors import IsslideError

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

BACKENDS = {"embedded": "isslide.insar.embedded", "snap": "isslide.snap.steps"}


def get_step(step: str, backend: str):
    if step not in STEPS:
        raise IsslideError(f"unknown InSAR step '{step}'; expected one of {', '.join(STEPS)}")
    if backend not in BACKENDS:
        raise IsslideError(f"backend: unknown backend '{backend}'; expected embedded or snap")
    module = import_module(BACKENDS[backend])
    return module.STEP_FUNCTIONS[step]


def run_step(step, backend, inputs, outputs, params, threads=1, resources=None) -> None:
    get_step(step, backend)(
        inputs=dict(inputs),
        outputs=dict(outputs),
        params=dict(params),
        threads=int(threads),
        resources=dict(resources or {}),
    )
