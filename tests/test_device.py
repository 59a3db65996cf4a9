"""One device helper for every stage: ``xlray.runtime.device``."""

import torch

from xlray.runtime import device


def test_device_is_the_one_asked_for_or_the_gpu_if_there_is_one():
    assert device("cpu") == "cpu" and device("cuda") == "cuda"
    assert device() == device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
