"""Detection of slow-moving ground on whole interferograms, as GIS layers (docs/detection.md).

* :mod:`.rasters`: read and check a phase/coherence GeoTIFF pair made anywhere;
* :mod:`.infer`: sliding 100 x 100 windows, Hann-blended, nodata-aware inference;
* :mod:`.candidates`: connected detections as polygons with annotation fields, repetitions;
* :mod:`.models`: the model folder to use and its threshold (:func:`model_threshold`);
* :mod:`.styles`: QGIS styles; :mod:`.run`: one interferogram in, layers out (:func:`detect`).
"""

from .candidates import FIELDS, find_candidates, pair_subset, stack_candidates
from .infer import predict_probability
from .models import best_model, choose_model, model_f1, model_threshold
from .rasters import read_pair
from .run import detect, read_candidates, write_candidates

__all__ = [
    "FIELDS",
    "best_model",
    "choose_model",
    "detect",
    "find_candidates",
    "model_f1",
    "model_threshold",
    "pair_subset",
    "predict_probability",
    "read_candidates",
    "read_pair",
    "stack_candidates",
    "write_candidates",
]
