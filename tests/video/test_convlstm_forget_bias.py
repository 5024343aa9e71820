"""The ConvLSTM cell's forget-gate bias: +1 by default (the shipped models), 0 is OpenSTL's cell (its model file
adds none), which the speed benchmark compares against with the same weights."""

import torch
from torch import nn

from ganapps.video.nets import ConvLSTMCell, ConvLSTMPredictor


def test_forget_bias_zero_is_openstls_cell_and_one_stays_the_default():
    torch.manual_seed(0)
    cell = ConvLSTMCell(5, 7, 3, forget_bias=0.0)
    x, h, c = torch.randn(2, 5, 6, 6), torch.randn(2, 7, 6, 6), torch.randn(2, 7, 6, 6)
    i, f, g, o = nn.functional.conv2d(torch.cat([x, h], 1), cell.gates.weight, padding=1).split(7, 1)
    c_ref = torch.sigmoid(i) * torch.tanh(g) + torch.sigmoid(f) * c  # OpenSTL: f_t = sigmoid(f_x + f_h)
    h_new, c_new = cell(x, h, c)
    assert torch.allclose(c_new, c_ref, atol=1e-6) and torch.allclose(h_new, torch.sigmoid(o) * torch.tanh(c_ref),
                                                                      atol=1e-6)
    shifted = ConvLSTMCell(5, 7, 3)
    shifted.load_state_dict(cell.state_dict())
    assert shifted.forget_bias == 1.0 and not torch.allclose(shifted(x, h, c)[1], c_new, atol=1e-3)
    net = ConvLSTMPredictor(1, 8, 2, 3, 2, "direct", forget_bias=0.0)
    assert all(cl.forget_bias == 0.0 for cl in net.cells)
    assert all(cl.forget_bias == 1.0 for cl in ConvLSTMPredictor(1, 8, 2, 3, 2, "direct").cells)
