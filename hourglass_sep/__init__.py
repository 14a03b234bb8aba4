"""Singing-voice separation with stacked hourglass networks: a reproducible MIR-1K benchmark.

Modules, one job each:
- ``audio``      reading/writing audio, resampling, atomic file writes
- ``features``   the seed's STFT features (8 kHz, 1024/256 Hann, 512 bins, max-normalised)
- ``catalogue``  clip table + MIR-1K train/test split from any MIR-1K-format folder
- ``cache``      one spectrogram-cache file per split (memory-mapped reader)
- ``mir1k``      downloading / extracting / validating the real MIR-1K
- ``synth``      the built-in synthetic MIR-1K-format corpus
- ``model``      the seed's stacked hourglass and Park's original network
- ``model_info`` parameters / FLOPs / activation memory of an architecture
- ``train``      training loop with checkpoints and resume
- ``separate``   mixture -> voice + accompaniment (windowed or whole-clip)
- ``scoring``    BSS Eval v3 per clip (museval / fast_bss_eval), NSDR
- ``aggregate``  length-weighted GNSDR/GSIR/GSAR
- ``workbook``, ``figures``, ``report``  result.xlsx, PNG figures, Markdown report
- ``cli``        the ``hourglass-sep`` command
"""

__version__ = "0.1.0"
