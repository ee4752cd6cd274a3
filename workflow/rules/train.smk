# Training and evaluation of the detectors. Input functions and evaluation_targets(): common.smk.
