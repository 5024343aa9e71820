import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """These tests use tiny tensors: on a shared CI machine, intra-op threads only contend (measured 10 s
    with one thread against 75 s with the default two on a loaded 2-core box)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
