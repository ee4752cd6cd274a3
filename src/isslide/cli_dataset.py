"""``isslide import-isslide``: the released ISSLIDE data as the workflow's training store."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "import-isslide",
        help="convert a tree in ISSLIDE's published layout into train.npz / eval.npz / index.csv",
        description=(
            "Read {delay}/{zone}/{interferogram}/phase|coherence/{id}_{k}.tif and "
            "{delay}/{zone}/Segmentations/{interferogram}/{id}_{k}.tif, split it with the paper's "
            "protocol (evaluation zones on a held-out fraction of the interferograms) and write "
            "the training store the train/evaluate rules read."
        ),
    )
    p.add_argument("root", help="root folder of the ISSLIDE data (holds the delay folders)")
    p.add_argument(
        "--out", default="results/dataset/ready", help="output folder (default: %(default)s)"
    )
    p.add_argument(
        "--eval-zone",
        action="append",
        required=True,
        dest="eval_zones",
        help="a zone folder used for evaluation (repeatable), e.g. Queyras",
    )
    p.add_argument(
        "--eval-fraction",
        type=float,
        default=0.2,
        help="held-out interferograms (default: %(default)s)",
    )
    p.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        help="validation share of the other interferograms (default: dataset.val_fraction of "
        "the config schema)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the held-out selection (default: %(default)s)"
    )
    p.add_argument("--motion-only", action="store_true", help="keep only patches with motion")
    p.set_defaults(func=run)


def run(args) -> int:
    from .dataset.isslide import import_isslide

    sizes = import_isslide(
        args.root,
        args.out,
        args.eval_zones,
        args.eval_fraction,
        args.seed,
        args.motion_only,
        val_fraction=args.val_fraction,
    )
    print(
        f"{args.out}: {sizes['train']} training, {sizes['val']} validation and "
        f"{sizes['eval']} evaluation samples"
    )
    return 0
