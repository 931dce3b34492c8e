"""The backbone protocol: what every backbone's F, G, E and D answer, so that the trainer,
callbacks, grids, metrics, export and editing tools never ask which backbone they hold.

A backbone has `levels` resolution levels (the MLP one; StyleALAE one per power of two from
4x4). G reads one w per style input, `styles_per_level` per level, `num_styles` in all (the
MLP: one); a level's rendering uses the style inputs of the levels up to it. During a level's
fade-in (`blend` in [0, 1)) G and E blend the new level with the one below. G may take
per-pixel noise images (`noise_shapes(level)`, empty for the MLP); `noise=None` means none, or,
for a generator with `noise_stand_in` (the official code's, converted), its deterministic stand-in.
"""

from typing import Protocol, runtime_checkable


@runtime_checkable
class Mapping(Protocol):
    """F: z [B, latent] -> w [B, latent]. Keeps `w_avg`, the running mean of w, and truncates toward it."""

    latent_dim: int
    truncation_cutoff: int  # truncation applies to the style inputs before this index

    def __call__(self, z): ...

    def update_w_avg(self, w, beta): ...

    def truncate(self, styles, psi): ...


@runtime_checkable
class Generator(Protocol):
    """G: styles [B, num_styles, latent] (or one w [B, latent] for every input) -> images [B, H, W, C]."""

    levels: int
    styles_per_level: int
    num_styles: int
    noise_stand_in: bool  # noise=None adds the official code's deterministic stand-in (else nothing)

    def __call__(self, styles, level=None, blend=None, noise=None): ...

    def image_shape(self, level) -> tuple[int, int, int]: ...

    def noise_shapes(self, level) -> list[tuple[int, int, int]]: ...


@runtime_checkable
class Encoder(Protocol):
    """E: images [B, H, W, C] in [-1, 1] at `level`'s resolution -> w [B, latent] (float32)."""

    levels: int

    def __call__(self, images, level=None, blend=None): ...

    def features(self, images, level=None, blend=None):
        """[B, F] float32: the representation E maps linearly onto w (the reference's MNIST probe
        reads it as E's penultimate features)."""


@runtime_checkable
class Discriminator(Protocol):
    """D: w [B, latent] -> one real/fake logit per row, shape [B]."""

    def __call__(self, w): ...
