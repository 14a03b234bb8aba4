"""The ``unet`` kind's network: Jansson et al.'s singing-voice U-Net (PyTorch).

A. Jansson, E. Humphrey, N. Montecchio, R. Bittner, A. Kumar and T. Weyde, "Singing voice
separation with deep U-Net convolutional networks", ISMIR 2017 (the architecture Spleeter
uses), written here from the paper:

* encoder: ``poolings`` layers (paper: 6) of 5x5 convolution with stride 2 -> BatchNorm ->
  LeakyReLU(0.2), widths ``channels * 2**i`` (paper: 16, 32, ..., 512);
* decoder: 5x5 transposed convolutions with stride 2 -> BatchNorm -> ReLU, 50 % dropout on the
  first three, each after the first taking the concatenation of the previous decoder output
  and the encoder output of the same resolution (the U-Net's skip connections);
* the last decoder layer maps to one channel per output and ends in a sigmoid: a soft mask
  that the pipeline multiplies with the mixture, as the paper does.

Front end adapted to this project: the paper's 8,192 Hz audio, 1024-point STFT with hop 768
and 512 x 128 patches become the pipeline's 8 kHz, 1024/256 STFT with 512 bins and 64-frame
patches (the time axis is pooled ``poolings`` times, so frames must be a multiple of
``2 ** poolings``: 64 at 6 layers, one frame at the bottom); the input is the normalised
magnitude only, and one network predicts both masks (voice, accompaniment) as two output
channels instead of the paper's one network per source.

``openunmix``/Spleeter code is not used: this module follows the paper's text only.
"""

from __future__ import annotations

import torch
from torch import nn

from hourglass_sep.nets.settings import ArchConfig

DROPOUT_LAYERS = 3  # the first three decoder layers drop 50 % (the paper, after pix2pix)


def _down(ci: int, co: int) -> nn.Sequential:
    """Encoder layer: halve both axes.  A Sequential(Conv2d, BatchNorm2d, ...), so that
    ``nets.inference.fold_batchnorm`` folds it for inference."""
    return nn.Sequential(
        nn.Conv2d(ci, co, 5, stride=2, padding=2),
        nn.BatchNorm2d(co),
        nn.LeakyReLU(0.2, inplace=True),
    )


def _up(ci: int, co: int, dropout: bool) -> nn.Sequential:
    """Decoder layer: double both axes exactly (output_padding 1 with padding 2)."""
    layers = [
        nn.ConvTranspose2d(ci, co, 5, stride=2, padding=2, output_padding=1),
        nn.BatchNorm2d(co),
        nn.ReLU(inplace=True),
    ]
    if dropout:
        layers.append(nn.Dropout(0.5))
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """Jansson et al.'s U-Net: (B, 1, 512, T) -> [(B, outputs, 512, T) sigmoid masks].

    ``forward`` returns a list of one prediction, the contract of every kind (the hourglass
    returns one per stack); 512 and T must be multiples of ``2 ** poolings``.
    """

    def __init__(self, cfg: ArchConfig):
        super().__init__()
        self.cfg = cfg
        widths = [cfg.channels * 2**i for i in range(cfg.poolings)]
        self.encoder = nn.ModuleList(_down(a, b) for a, b in zip([1, *widths[:-1]], widths))
        # decoder layer j (j = 0 deepest): in = widths[-1] (j = 0) or 2 x the skip's width
        ins = [widths[-1]] + [2 * w for w in reversed(widths[1:-1])]
        outs = list(reversed(widths[:-1]))
        self.decoder = nn.ModuleList(
            _up(a, b, dropout=j < DROPOUT_LAYERS) for j, (a, b) in enumerate(zip(ins, outs))
        )
        last_in = 2 * widths[0] if cfg.poolings > 1 else widths[0]
        self.head = nn.ConvTranspose2d(
            last_in, cfg.outputs, 5, stride=2, padding=2, output_padding=1
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        skips = []
        for layer in self.encoder:
            x = layer(x)
            skips.append(x)
        skips.pop()  # the bottom is the decoder's input, not a skip
        for layer in self.decoder:
            x = torch.cat([layer(x), skips.pop()], 1)
        return [torch.sigmoid(self.head(x))]
