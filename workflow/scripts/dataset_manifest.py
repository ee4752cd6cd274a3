"""Snakemake wrapper: isslide.dataset.raw.write_manifest (dataset counts, JSON + CSV)."""

from isslide.dataset.raw import write_manifest
from isslide.smk import run


def main(smk):
    write_manifest(
        smk.input.index,
        list(smk.input.raw),
        dict(zip(smk.params.stacks, smk.input.centres, strict=True)),
        smk.output.json,
        smk.output.csv,
        notes=smk.params.notes,
        temporal=smk.input.temporal[0] if smk.input.temporal else None,
    )


run(snakemake, main)  # noqa: F821
