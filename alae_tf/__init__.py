"""alae_tf: Adversarial Latent Autoencoders (Pidhorskyi et al., CVPR 2020) in TensorFlow/Keras."""

__version__ = "0.1.0"
