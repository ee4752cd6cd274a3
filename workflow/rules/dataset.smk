# Patch centres, raw and ready-to-use datasets.


def dataset_targets():
    return []
