# Patch centres, raw and ready-to-use datasets. Input functions and dataset_targets(): common.smk.
