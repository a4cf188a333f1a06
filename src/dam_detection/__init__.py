"""dam_detection: find dams in Sentinel-2 imagery, from points to heatmaps."""

import os

# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512-class features.
# Without them (most AVX2-only CPUs) the default FCN's training step is 2.5x slower, the
# classifier's 1.9x and a scan block's prediction 2.0x (benchmarks/model_layers.py, "off"
# against "AVX2"), so this project asks for oneDNN everywhere. Set before anything imports
# TensorFlow, which reads it once; TF_ENABLE_ONEDNN_OPTS=0 in the environment still wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
