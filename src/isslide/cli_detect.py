"""``isslide detect``: a trained detector over one whole interferogram, as GIS layers."""

from __future__ import annotations

from .detect.candidates import MIN_SIZE
from .detect.infer import BATCH, STRIDE


def add_parser(sub) -> None:
    d = sub.add_parser(
        "detect",
        help="run a trained detector over a phase/coherence GeoTIFF pair (any CRS)",
        description="Writes OUT/probability.tif, mask.tif, candidates.gpkg (each with a QGIS "
        ".qml style) and detection.json, on the input grid. Nothing is written on bad input.",
    )
    d.add_argument("--model", required=True, help="model folder, e.g. results/models/unet")
    d.add_argument("--phase", required=True, help="wrapped phase GeoTIFF (radians, [-pi, pi])")
    d.add_argument("--coherence", required=True, help="coherence GeoTIFF on the phase grid")
    d.add_argument("--out", required=True, help="output folder")
    d.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="probability threshold (default: the model's validation threshold, else its "
        "evaluation threshold)",
    )
    d.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda:N")
    d.add_argument("--stride", type=int, default=STRIDE, help=f"window stride in px ({STRIDE})")
    d.add_argument(
        "--min-size", type=int, default=MIN_SIZE, help=f"smallest candidate in px ({MIN_SIZE})"
    )
    d.add_argument("--batch-size", type=int, default=BATCH, help=f"windows per batch ({BATCH})")
    d.add_argument(
        "--coherence-scale",
        type=float,
        default=1.0,
        help="divide the coherence by this (scaled integers, e.g. 255)",
    )
    d.add_argument("--layover-shadow", default=None, help="optional mask: 0 usable, else not")
    d.add_argument("--reference", default=None, help="YYYYMMDD (default: from the file name)")
    d.add_argument("--secondary", default=None, help="YYYYMMDD (default: from the file name)")
    d.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    d.set_defaults(func=cmd_detect)


def cmd_detect(args) -> int:
    import logging

    from .detect.run import detect
    from .smk import setup_logging

    setup_logging(level=logging.WARNING)
    s = detect(
        args.model,
        args.phase,
        args.coherence,
        args.out,
        threshold=args.threshold,
        device=args.device,
        stride=args.stride,
        min_size=args.min_size,
        batch_size=args.batch_size,
        coherence_scale=args.coherence_scale,
        layover_shadow=args.layover_shadow,
        reference=args.reference,
        secondary=args.secondary,
        threads=args.threads,
    )
    print(
        f"{s['model_name']}: threshold {s['threshold']:.4f} ({s['threshold_source']}); "
        f"{s['candidates']} candidate(s), {100 * s['flagged_fraction']:.3f} % of "
        f"{s['valid_pixels']} valid pixels flagged, {s['seconds']:.1f} s on {s['device']} "
        f"-> {args.out}"
    )
    return 0
