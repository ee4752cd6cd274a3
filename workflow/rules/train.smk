# Training and evaluation of the detectors.


def evaluation_targets():
    return []
