"""A compact 3D U-Net: four resolution levels, batch norm, leaky ReLU, one logit out.

Batch norm (not instance norm) keeps inference independent of the window size: in evaluation
mode it uses the statistics learned in training, whatever the context around a voxel."""

import torch
from torch import nn


def _block(in_channels, out_channels):
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm3d(out_channels),
        nn.LeakyReLU(0.01, inplace=True),
        nn.Conv3d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm3d(out_channels),
        nn.LeakyReLU(0.01, inplace=True),
    )


class UNet3D(nn.Module):
    """Input (N, in_channels, X, Y, Z) with X, Y, Z multiples of ``2 ** (levels - 1)``;
    output (N, 1, X, Y, Z) logits of WMH."""

    def __init__(self, in_channels=1, base_channels=16, levels=4):
        super().__init__()
        widths = [base_channels * 2**i for i in range(levels)]
        self.down = nn.ModuleList()
        previous = in_channels
        for width in widths:
            self.down.append(_block(previous, width))
            previous = width
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for width in reversed(widths[:-1]):
            self.up.append(nn.ConvTranspose3d(previous, width, 2, stride=2))
            self.merge.append(_block(2 * width, width))
            previous = width
        self.head = nn.Conv3d(previous, 1, 1)

    @property
    def divisor(self):
        return 2 ** (len(self.down) - 1)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else nn.functional.max_pool3d(x, 2))
            skips.append(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1]), strict=True):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.head(x)
