"""alae_tf: Adversarial Latent Autoencoders (Pidhorskyi et al., CVPR 2020) in TensorFlow/Keras."""

import os

# TensorFlow reads this once, when it is imported, and leaves its oneDNN CPU kernels off by default
# on some CPUs (TF 2.21 on an AVX2-only AMD EPYC: off). With them on, StyleALAE's training step is
# 1.56x faster there (README, Results, "oneDNN"). An explicit setting wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
# TensorFlow's INFO lines (XLA service start, "Compiled cluster using XLA!") say nothing an
# operator acts on; warnings and errors stay. Read once, at import. An explicit setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from alae_tf.tensorflow_start import quiet_ctrl_c_while_starting, quiet_tensorflow_import  # noqa: E402

quiet_ctrl_c_while_starting()
quiet_tensorflow_import()  # TensorFlow itself is imported by the modules that use it

__version__ = "0.1.0"
