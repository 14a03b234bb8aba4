"""The ``open-unmix`` kind's network: Stöter et al.'s Open-Unmix (PyTorch).

F.-R. Stöter, S. Uhlich, A. Liutkus and Y. Mitsufuji, "Open-Unmix - A Reference Implementation
for Music Source Separation", Journal of Open Source Software 4(41), 1667, 2019, written here
from the paper.  Every frame of the magnitude spectrogram goes through:

* a learned shift and scale per frequency bin (the input normalisation);
* fc1: bins -> hidden, no bias, then BatchNorm and tanh (the bottleneck);
* a bidirectional LSTM of ``poolings`` layers (paper: 3) with hidden/2 units per direction
  (dropout 0.4 between layers, the reference implementation's default), over the frames;
* the skip connection: [fc1 output, LSTM output] -> fc2 (2 hidden -> hidden, no bias),
  BatchNorm, ReLU -> fc3 (hidden -> outputs x bins, no bias), BatchNorm;
* a learned output scale and shift per (output, bin), then ReLU: a non-negative multiplier of
  the mixture magnitude per output (Open-Unmix multiplies its output by the mixture; the
  pipeline does the same with masks).

``channels`` is the hidden size (paper: 512) and ``poolings`` the number of LSTM layers: the
network has one prediction, and ``stacks`` counts the predictions everywhere else (the loss and
history of ``training.train``), so it is pinned to 1.

Front end adapted to this project: the paper's 44.1 kHz stereo input, 4096/1024 STFT, 16 kHz
bandwidth crop and whole-track training sequences become the pipeline's 8 kHz, 1024/256 STFT
with all 512 bins, mono normalised magnitude only, and 64-frame training patches; the input
shift and scale start at 0 and 1 (the pipeline normalises the input already) instead of the
dataset's mean and standard deviation; and one network predicts both sources (voice and
accompaniment masks as two outputs) instead of the paper's one network per source.  The
network takes any number of frames (``time_multiple`` 1).

Why not the ``openunmix`` package: openunmix 1.3.0 requires torchaudio, whose releases pin
another torch than the project's torch==2.13.0, so it cannot be installed beside it; this
module is written from the paper instead.
"""

from __future__ import annotations

import torch
from torch import nn

from hourglass_sep.data.features import N_BINS
from hourglass_sep.nets.settings import ArchConfig

LSTM_DROPOUT = 0.4  # between LSTM layers (the reference implementation's default)


def lstm_units(hidden: int) -> int:
    """Units per direction of the BLSTM: hidden / 2 (at least 1 for tiny test networks)."""
    return max(1, hidden // 2)


class OpenUnmix(nn.Module):
    """Open-Unmix: (B, 1, 512, T) -> [(B, outputs, 512, T) non-negative multipliers].

    ``forward`` returns a list of one prediction, the contract of every kind.
    """

    def __init__(self, cfg: ArchConfig, bins: int = N_BINS):
        super().__init__()
        self.cfg, self.bins = cfg, bins
        hidden, units, out = cfg.channels, lstm_units(cfg.channels), cfg.outputs * bins
        self.input_shift = nn.Parameter(torch.zeros(bins))
        self.input_scale = nn.Parameter(torch.ones(bins))
        self.fc1 = nn.Linear(bins, hidden, bias=False)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.lstm = nn.LSTM(
            hidden,
            units,
            num_layers=cfg.poolings,
            bidirectional=True,
            batch_first=True,
            dropout=LSTM_DROPOUT if cfg.poolings > 1 else 0.0,
        )
        self.fc2 = nn.Linear(hidden + 2 * units, hidden, bias=False)
        self.bn2 = nn.BatchNorm1d(hidden)
        self.fc3 = nn.Linear(hidden, out, bias=False)
        self.bn3 = nn.BatchNorm1d(out)
        self.output_scale = nn.Parameter(torch.ones(out))
        self.output_shift = nn.Parameter(torch.ones(out))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b, _, bins, t = x.shape
        frames = x[:, 0].transpose(1, 2).reshape(b * t, bins)  # one row per frame
        frames = (frames + self.input_shift) * self.input_scale
        z = torch.tanh(self.bn1(self.fc1(frames)))
        seq, _ = self.lstm(z.reshape(b, t, -1))
        y = torch.cat([z, seq.reshape(b * t, -1)], 1)
        y = torch.relu(self.bn2(self.fc2(y)))
        y = self.bn3(self.fc3(y)) * self.output_scale + self.output_shift
        y = torch.relu(y).reshape(b, t, self.cfg.outputs, bins)
        return [y.permute(0, 2, 3, 1)]
