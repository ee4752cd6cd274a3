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
        default=[],
        dest="eval_zones",
        help="a zone folder used for evaluation (repeatable), e.g. Queyras; needed by "
        "--split-rule hash",
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
    p.add_argument(
        "--split-rule",
        choices=["hash", "last_by_date"],
        default="hash",
        help="hash: seeded hash ranking, --eval-zone patches evaluate; last_by_date: the authors' "
        "rule, the last --eval-fraction of each delay and zone's interferograms by date, every "
        "zone (default: %(default)s)",
    )
    p.add_argument(
        "--patch-size",
        type=int,
        default=None,
        help="patch side in pixels (default: the tree's most common size); patches within 2 "
        "pixels of it are cropped or padded, others skipped",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from .dataset.isslide import import_isslide
    from .errors import IsslideError

    if args.split_rule == "hash" and not args.eval_zones:
        raise IsslideError(
            "import-isslide: --split-rule hash needs at least one --eval-zone (e.g. --eval-zone "
            "Queyras), or use --split-rule last_by_date"
        )

    m = import_isslide(
        args.root,
        args.out,
        args.eval_zones,
        args.eval_fraction,
        args.seed,
        args.motion_only,
        patch_size=args.patch_size,
        val_fraction=args.val_fraction,
        split_rule=args.split_rule,
    )
    skipped = sum(m["skipped"].values())
    print(
        f"{args.out}: {m['train']} training, {m['val']} validation and {m['eval']} evaluation "
        f"samples; {m['imported']} of {m['patches_found']} patches imported "
        f"({m['cropped_to_size']} cropped, {m['padded_to_size']} padded to {m['patch_size']} x "
        f"{m['patch_size']}, {skipped} skipped; see {args.out}/import_manifest.json)"
    )
    return 0
