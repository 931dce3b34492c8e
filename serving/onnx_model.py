"""The app API: an exported ALAE on ONNX Runtime, on numpy arrays. Needs numpy and
onnxruntime (or onnxruntime-gpu) only, no TensorFlow.

    model = ALAEOnnx("exports")                      # EXPORT, EXPORT/onnx/NAME or a version dir
    small = ALAEOnnx("exports", variant="int8")      # the int8 files of an export made with --onnx-int8
    pixels = np.stack([model.read_image("photo.jpg")])   # image files at the model's shape, uint8 (Pillow)
    w = model.encode(pixels)                         # [N, H, W, C] uint8 or float32 in [-1, 1]
    images = model.generate(n=16, seed=0, truncation_psi=0.7, as_uint8=True)
    images = model.generate(z, noise=model.noise(len(z), seed=1))   # StyleALAE: with per-pixel noise
    edited = model.edit(pixels, "3_to_8", strength=2.0, layers="all")   # the export's directions (metadata)
    mixed = model.mix(destinations, sources, layers="coarse")      # per-layer styles through decode_styles

An app whose process runs no other ONNX models may call `share_one_thread_pool()` first: lower
latency at small batches (see there).

Every signature of the export's SavedModel runs here too (`run_signature`), built from
`serving.contract` and the export's metadata. Image outputs are float32 in [-1, 1]
(unclipped: the generator is linear at the end), or uint8 [0, 255] with `as_uint8=True`
(rounded, clipped). Bad input raises ValueError.
"""

import json
import logging
import math
import os
from pathlib import Path

import numpy as np
import onnxruntime

from serving import contract, editing
from serving.layout import (FLOAT32, ONNX_METADATA, ONNX_VARIANTS, VERSION_NAME, onnx_file, onnx_version_dirs_newest_first,
                            read_metadata)

log = logging.getLogger(__name__)

# What ALAEOnnx reads from an export's metadata.json (contract.signatures_from_metadata too).
REQUIRED_METADATA = ("model_name", "version", "image_shape", "latent_dim", "noise_inputs")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
CUDA_HINT = (": onnxruntime-gpu 1.31 runs on CUDA 13 with cuDNN 9, which PyPI has as its extras: pip uninstall onnxruntime; "
             "pip install \"onnxruntime-gpu[cuda,cudnn]==1.31.1\"")


# The intra-op threads of ONNX Runtime's one global pool, once share_one_thread_pool() set it
# (0: ONNX Runtime's choice); None: each graph's session has its own pool.
_shared_pool_threads = None


def share_one_thread_pool(threads=None) -> None:
    """Run every ALAEOnnx made after this call on one ONNX Runtime thread pool of `threads` intra-op
    threads (None: ONNX Runtime's choice, all cores) instead of a pool per graph. On a 2-core CPU at
    batch 1 that took 25-39% off each call (encode, generate, reconstruct, encode + decode_styles;
    batch 64 unchanged): the one pool's threads may spin between calls, where a pool per graph must
    stop them lest they take the cores from the next graph's pool (benchmarks/inference_latency.py
    --shared-thread-pool). A setting of the whole process, and for good: ONNX Runtime then refuses
    sessions with a pool of their own, so an app that runs other ONNX models in this process sets
    `use_per_session_threads = False` in their SessionOptions. Calling it again with the same size does
    nothing; with another, ValueError."""
    global _shared_pool_threads
    if threads is not None and not (contract.is_integer(threads) and threads >= 1):
        raise ValueError(f"threads must be an integer >= 1 or None (ONNX Runtime's choice), got {threads!r}")
    size = threads or 0
    if _shared_pool_threads is None:
        onnxruntime.set_global_thread_pool_sizes(size)
        _shared_pool_threads = size
    elif _shared_pool_threads != size:
        raise ValueError(f"this process already shares one ONNX Runtime thread pool of "
                         f"{_shared_pool_threads or 'its default number of'} threads; it cannot be resized")


def default_providers() -> list[str]:
    """CUDA (then CPU as fallback) when onnxruntime-gpu is installed, else CPU."""
    return [CUDA, CPU] if CUDA in onnxruntime.get_available_providers() else [CPU]


def _check_outputs_finite(signature, inputs: dict, outputs: dict) -> None:
    """Finite inputs far outside what the model was trained on (|w| ~ 1e38) overflow inside the
    graphs: refuse them (ValueError) rather than answer NaN, or black images as uint8. Images
    cannot (they are checked to lie within FLOAT_IMAGE_LIMIT, and the nets' weights are finite):
    operations on images alone skip the test, a good part of a batch-1 encode's time."""
    if all(spec.name == contract.IMAGES for spec in signature.inputs):
        return
    bad = [spec.name for spec in signature.outputs if not np.isfinite(outputs[spec.name]).all()]
    if bad:
        largest = ", ".join(f"{name} {np.abs(value).max():.3g}" for name, value in inputs.items() if value.dtype.kind == "f")
        raise ValueError(f"{signature.name}: {', '.join(bad)} overflow to NaN or infinity for these inputs (largest "
                         f"|value|: {largest}); latents from encode or N(0, I) are of order 1, truncation_psi of order 1")


def _is_finite_number(value) -> bool:
    return contract.is_real_number(value) and math.isfinite(value)


def _is_count(value) -> bool:
    return contract.is_integer(value) and value >= 1


def _of_operations(signatures: dict, operations) -> dict:
    """The signatures of these operations (names as `contract.OPERATIONS`; all when None), and metadata."""
    if operations is None:
        return signatures
    wanted = {operations} if isinstance(operations, str) else set(operations)
    exported = {signature.operation.name for signature in signatures.values()} - {contract.METADATA}
    if not wanted or wanted - exported:
        raise ValueError(f"operations: {', '.join(sorted(wanted - exported)) or 'none given'}; this export has "
                         f"{', '.join(sorted(exported))}")
    return {name: signature for name, signature in signatures.items()
            if signature.operation.name in wanted | {contract.METADATA}}


def _check_metadata(metadata: dict, path) -> None:
    """ValueError naming the first key of an export's metadata that ALAEOnnx reads and that does
    not hold what an export writes there (a hand-edited or damaged file)."""
    def sizes(value, count, smallest=1):
        return (isinstance(value, list) and len(value) == count
                and all(contract.is_integer(n) and n >= smallest for n in value))

    expected = {
        "model_name": (lambda v: isinstance(v, str) and v != "", "a name"),
        "version": (_is_count, "a positive integer"),
        "image_shape": (lambda v: sizes(v, 3), "[height, width, channels]"),
        "latent_dim": (_is_count, "a positive integer"),
        "noise_inputs": (lambda v: isinstance(v, list) and all(sizes(shape, 3) for shape in v), "a list of [h, w, 1] shapes"),
        "num_styles": (lambda v: v is None or _is_count(v), "a positive integer"),
        "layer_ranges": (lambda v: isinstance(v, dict) and all(sizes(span, 2, smallest=0) for span in v.values()),
                         "{name: [start, stop]}"),
        "truncation_psi": (lambda v: v is None or _is_finite_number(v), "null or a number"),
        "onnx_variants": (lambda v: isinstance(v, list) and all(isinstance(name, str) for name in v), "a list of names"),
    }
    for key, (valid, what) in expected.items():
        if key in metadata and not valid(metadata[key]):
            raise ValueError(f"{path / ONNX_METADATA} is damaged: {key} must be {what}, got {json.dumps(metadata[key])[:80]}; "
                             "export the run again")


def _check_graph_shapes(path, variant, sessions: dict, signatures: dict) -> None:
    """ValueError when a graph's inputs or outputs do not have the shapes the metadata gives them
    (its files come from another export than its metadata.json): caught here rather than as an
    ONNX Runtime error on the first call."""
    shapes = {spec.name: spec.shape for signature in signatures.values() for spec in signature.inputs + signature.outputs}
    for graph, session in sessions.items():
        for arg in session.get_inputs() + session.get_outputs():
            expected = shapes.get(arg.name)
            if expected is None:
                continue
            actual = arg.shape[1:]  # after the batch; a dimension that is not a number is free
            if len(actual) != len(expected) or any(isinstance(a, int) and a != e for a, e in zip(actual, expected)):
                raise ValueError(f"{path / onnx_file(graph, variant)} does not match {path / ONNX_METADATA}: its {arg.name} is "
                                 f"[batch, {', '.join(map(str, actual))}], the metadata's [batch, "
                                 f"{', '.join(map(str, expected))}]; export the run again")


def _checked_seed(seed):
    """A seed for numpy's generator: None (fresh entropy) or an integer >= 0."""
    if seed is not None and not (contract.is_integer(seed) and seed >= 0):
        raise ValueError(f"seed must be an integer >= 0 or None, got {seed!r}")
    return seed


class ALAEOnnx:
    def __init__(self, export_dir, providers=None, name=None, max_batch_size=256, threads=None, variant=FLOAT32,
                 operations=None):
        """`threads` sets ONNX Runtime's intra-op threads (default: its own choice, all cores).
        `variant`: float32 (GRAPH.onnx) or int8 (GRAPH.int8.onnx, written by python -m export --onnx-int8).
        `operations`: load only these operations' graphs (default all), e.g. ["encode"]: an app that
        only encodes does not hold the generator, whose weights each of decode, generate,
        decode_styles and their noise forms carries (a StyleALAE export: six copies).

        Given EXPORT or EXPORT/onnx/NAME, the newest version that loads (as the HTTP server serves
        it): newer ones that do not (being copied in by hand, damaged) are logged and listed in
        `skipped_versions`; when none loads, the newest one's error is raised."""
        if variant not in ONNX_VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(ONNX_VARIANTS)}, got {variant!r}")
        if not _is_count(max_batch_size):
            raise ValueError(f"max_batch_size must be a positive integer, got {max_batch_size!r}")
        if threads is not None and not (contract.is_integer(threads) and threads >= 0):
            raise ValueError(f"threads must be an integer >= 0 (0 or None: ONNX Runtime's choice), got {threads!r}")
        if threads and _shared_pool_threads is not None:
            raise ValueError("threads: this process runs ALAEOnnx on one shared thread pool, whose size "
                             "share_one_thread_pool() set")
        for provider in [providers] if isinstance(providers, str) else list(providers or []):
            provider_name = provider[0] if isinstance(provider, tuple) else provider
            if provider_name not in onnxruntime.get_all_providers():
                raise ValueError(f"providers: no ONNX Runtime execution provider is called {provider_name!r} (e.g. "
                                 f"{CUDA!r}, {CPU!r})")
        self.max_batch_size = max_batch_size
        # What pickling keeps (__reduce__); export_dir and name give way to the version directory opened.
        self._settings = (providers, max_batch_size, threads, variant, operations)
        failures = []
        for directory in onnx_version_dirs_newest_first(export_dir, name):
            try:
                self._load(directory, providers, threads, variant, operations)
                break
            except (FileNotFoundError, ValueError) as exc:
                failures.append((directory, exc))
        else:
            raise failures[0][1]
        self.skipped_versions = [directory for directory, _ in failures]
        for directory, exc in failures:
            log.warning("version %s in %s cannot be loaded (%s); using version %s", directory.name, directory.parent, exc,
                        self.version)

    def _load(self, path, providers, threads, variant, operations):
        self.path = path
        self.metadata = read_metadata(self.path)
        missing = [key for key in REQUIRED_METADATA if key not in self.metadata]
        if missing:
            raise ValueError(f"{self.path / ONNX_METADATA} is damaged: it lacks {', '.join(missing)}; export the run again")
        _check_metadata(self.metadata, self.path)
        # Told by the directory's name as TF-Serving does: a version copied in by hand under a new
        # number keeps the number it was exported with in its metadata.
        self.version = int(self.path.name) if VERSION_NAME.fullmatch(self.path.name) else int(self.metadata["version"])
        exported = self.metadata.get("onnx_variants", [FLOAT32])
        if variant not in exported:
            raise ValueError(f"{self.path} has no {variant} ONNX files (it has {', '.join(exported)}); "
                             f"export the run again with python -m export --onnx-{variant}")
        self.variant = variant
        self.image_shape = tuple(self.metadata["image_shape"])
        self.latent_dim = int(self.metadata["latent_dim"])
        self.noise_shapes = [tuple(shape) for shape in self.metadata["noise_inputs"]]
        self.num_styles = self.metadata.get("num_styles")
        # Named style-input ranges and the run's directions, as the export wrote them (none in older exports).
        self.layer_ranges = {name: tuple(span) for name, span in self.metadata.get("layer_ranges", {}).items()}
        directions = self.metadata.get("directions")
        self.directions = (editing.DirectionSet.from_json(directions, f"{self.path} metadata") if directions
                           else editing.DirectionSet(self.latent_dim))
        exported_signatures = contract.signatures_from_metadata(self.metadata)
        self.signatures = _of_operations(exported_signatures, operations)
        self._not_loaded = sorted(set(exported_signatures) - set(self.signatures))
        options = onnxruntime.SessionOptions()
        if _shared_pool_threads is not None:
            options.use_per_session_threads = False
        else:
            if threads:
                options.intra_op_num_threads = threads
            # One session per graph, each with its own thread pool whose threads spin for a while after
            # a run: on a 2-core CPU that spinning took the cores from the next graph of the same call
            # (reconstruct = encode then decode: 1.2 ms instead of 0.7 at batch 1; benchmarks/inference_latency.py).
            # Spin only while a run is active.
            options.add_session_config_entry("session.force_spinning_stop", "1")
        requested = [providers] if isinstance(providers, str) else list(providers) if providers else default_providers()
        self._sessions, trying = {}, requested
        for graph in contract.onnx_graphs(self.signatures):
            self._sessions[graph] = self._session(self.path / onnx_file(graph, variant), options, trying, variant)
            if self._sessions[graph].get_providers()[0] == CPU:  # a provider that did not start is not tried again
                trying = [CPU]
        _check_graph_shapes(self.path, variant, self._sessions, self.signatures)
        self._io_names = {graph: ([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()])
                          for graph, session in self._sessions.items()}
        self.provider = next(iter(self._sessions.values())).get_providers()[0]
        first = requested[0][0] if isinstance(requested[0], tuple) else requested[0]  # a name or (name, options)
        if self.provider != first and providers:  # ONNX Runtime falls back along the list with a warning of its own
            log.warning("asked for %s, running on %s%s", first, self.provider, CUDA_HINT if first == CUDA else "")
        elif self.provider != first:
            log.warning("onnxruntime-gpu is installed but CUDA did not start, so running on %s (no GPU, or not the "
                        "CUDA 13 / cuDNN 9 it needs%s); providers=%r chooses the CPU without this warning",
                        self.provider, CUDA_HINT.replace(": ", ": for those, ", 1), [CPU])
        log.info("ALAE %s version %s from %s on %s", self.metadata["model_name"], self.version, self.path, self.provider)

    @staticmethod
    def _session(path, options, providers, variant):
        if not path.is_file():
            flag = "" if variant == FLOAT32 else f" --onnx-{variant}"
            raise FileNotFoundError(f"{path} is missing: the export is incomplete; export the run again with python -m export{flag}")
        if providers != [CPU]:
            try:
                return onnxruntime.InferenceSession(str(path), options, providers=providers)
            except Exception as exc:  # ONNX Runtime raises its own pybind types (Fail, EPFail, InvalidProtobuf, ...)
                log.warning("%s: cannot start %s (%s); using the CPU", path.name, providers[0], exc)
        try:
            return onnxruntime.InferenceSession(str(path), options, providers=[CPU])
        except Exception as exc:
            reason = str(exc).strip().split("\n")[0] or type(exc).__name__
            raise ValueError(f"{path} cannot be loaded ({reason}): the file is damaged or incomplete; export the run "
                             "again") from None

    def __reduce__(self):
        """Pickled as the way to open it again (an ONNX Runtime session cannot be pickled): the
        version directory it opened, with the same settings, read again where it is unpickled
        (joblib, Ray and multiprocessing pass models so)."""
        return ALAEOnnx, (self.path, self._settings[0], None, *self._settings[1:])

    @property
    def metadata_json(self) -> str:
        return json.dumps(self.metadata)

    def encode(self, images) -> np.ndarray:
        """images [N, H, W, C], uint8 [0, 255] or float [-1, 1] -> w float32 [N, latent]."""
        return self._run_on_images("encode", images)["w"]

    def decode(self, w, as_uint8=False, *, noise=None) -> np.ndarray:
        """w [N, latent] -> images [N, H, W, C]; `noise` (a list as `noise()` gives): G's per-pixel
        noise images, None for none (a StyleALAE generator's deterministic mean image)."""
        images = self.run_signature(self._with_noise("decode", noise), {"w": w, **self._noise_inputs(noise)})["images"]
        return self._images(images, as_uint8)

    def generate(self, z=None, *, n=None, seed=None, truncation_psi=1.0, noise=None, as_uint8=False) -> np.ndarray:
        """Images from latents z [N, latent], or from n fresh z ~ N(0, I) drawn with `seed`.

        truncation_psi (a number, or one per row): w_avg + psi * (F(z) - w_avg); 1 = none.
        noise: as for `decode`."""
        if (z is None) == (n is None):
            raise ValueError("pass either z or n (with an optional seed)")
        if z is None:
            if not _is_count(n):
                raise ValueError(f"n must be a positive integer, got {n!r}")
            z = np.random.default_rng(_checked_seed(seed)).standard_normal((n, self.latent_dim), dtype=np.float32)
        elif seed is not None:
            raise ValueError("seed draws z: pass it with n, not with z")
        z = contract.as_array(z, "z")
        batch = len(z) if z.ndim else 0  # a wrong z is named by run_signature's checks
        psi = editing.real_numbers(truncation_psi, "truncation_psi (1 = no truncation)")
        if psi.ndim > 1 or (psi.ndim == 1 and len(psi) != batch):
            raise ValueError(f"truncation_psi must be a number or one per row ({batch}), got shape {list(psi.shape)}")
        inputs = {"z": z, "truncation_psi": psi if psi.ndim else np.full(batch, psi), **self._noise_inputs(noise)}
        return self._images(self.run_signature(self._with_noise("generate", noise), inputs)["images"], as_uint8)

    def decode_styles(self, styles, as_uint8=False, *, noise=None) -> np.ndarray:
        """styles [N, num_styles, latent] (one w per style input of G) -> images; noise as for `decode`.
        Every row equal to w gives decode(w)."""
        self._require_styles()
        inputs = {contract.STYLES: styles, **self._noise_inputs(noise)}
        return self._images(self.run_signature(self._with_noise("decode_styles", noise), inputs)["images"], as_uint8)

    def edit(self, images, direction, strength, layers="all", as_uint8=False, *, noise=None) -> np.ndarray:
        """G(E(images) moved by `strength` along `direction` on the style inputs of `layers`).

        direction: a name of `self.directions` or a vector [latent] (used as given); strength: a
        number or one per image (0: the plain reconstruction); layers: a name of `self.layer_ranges`
        or (start, stop)."""
        self._require_styles()
        vector = self.directions.vector(direction) if isinstance(direction, str) else direction
        start, stop = self.layer_range(layers)
        styles = editing.edit_styles(self.encode(images), vector, strength, start, stop, self.num_styles)
        return self.decode_styles(styles, as_uint8, noise=noise)

    def mix(self, destinations, sources, layers, as_uint8=False, *, noise=None) -> np.ndarray:
        """Each destination image rendered with the style inputs of `layers` taken from the source image
        of the same row (images [N, H, W, C] each)."""
        self._require_styles()
        start, stop = self.layer_range(layers)
        styles = editing.mix_styles(self.encode(destinations), self.encode(sources), start, stop, self.num_styles)
        return self.decode_styles(styles, as_uint8, noise=noise)

    def layer_range(self, layers) -> tuple[int, int]:
        """(start, stop) of a layer-range name of this export, or of a (start, stop) pair (checked)."""
        if isinstance(layers, str):
            if layers not in self.layer_ranges:
                raise ValueError(f"unknown layer range {layers!r}; this export has {', '.join(self.layer_ranges)}")
            return self.layer_ranges[layers]
        if not (isinstance(layers, (tuple, list)) and len(layers) == 2 and all(contract.is_integer(i) for i in layers)):
            raise ValueError(f"layers must be a layer-range name ({', '.join(self.layer_ranges)}) or (start, stop) "
                             f"integers, got {layers!r}")
        start, stop = layers
        editing.check_layer_range(start, stop, self.num_styles)
        if start == stop:  # an edit or a mix on no style input would silently change nothing
            raise ValueError(f"layer range ({start}, {stop}) is empty: expected start < stop <= {self.num_styles}")
        return int(start), int(stop)

    def _check_loaded(self, signature_name):
        if signature_name in self._not_loaded:
            loaded = sorted({s.operation.name for s in self.signatures.values()} - {contract.METADATA})
            raise ValueError(f"{signature_name} is not loaded: this model was opened with operations={loaded}")

    def _require_styles(self):
        self._check_loaded("decode_styles")
        if "decode_styles" not in self.signatures:
            raise ValueError("this export predates per-layer styles (it has no decode_styles); "
                             "export the run again to edit or mix (a run of format 1, from alae_tf before its "
                             "backbone protocol, cannot be exported so: retrain it)")

    def reconstruct(self, images, as_uint8=False) -> np.ndarray:
        """G(E(images)), images uint8 or float -> [N, H, W, C]."""
        return self._images(self._run_on_images("reconstruct", images)["images"], as_uint8)

    def noise(self, batch, seed=None) -> list[np.ndarray]:
        """Standard normal noise images [batch, h, w, 1], one per noise input of G (none for the MLP)."""
        if not _is_count(batch):
            raise ValueError(f"batch must be a positive integer, got {batch!r}")
        rng = np.random.default_rng(_checked_seed(seed))
        return [rng.standard_normal((batch, *shape), dtype=np.float32) for shape in self.noise_shapes]

    def interpolate(self, a, b, steps=8, as_uint8=False) -> np.ndarray:
        """Images along the straight line from E(a) to E(b) in w space, both ends included.

        a, b: one image [H, W, C] each -> [steps, H, W, C]; or batches [N, H, W, C] -> [N, steps, H, W, C]."""
        if not contract.is_integer(steps) or steps < 2:
            raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
        single = np.ndim(a) == len(self.image_shape)
        if (np.ndim(b) == len(self.image_shape)) != single:
            raise ValueError(f"a and b must both be one image [H, W, C] or both batches [N, H, W, C], got shapes "
                             f"{list(np.shape(a))} and {list(np.shape(b))}")
        a, b = (np.asarray(x)[np.newaxis] if single else x for x in (a, b))
        w_a, w_b = self.encode(a), self.encode(b)
        if w_a.shape != w_b.shape:
            raise ValueError(f"a and b must hold the same number of images, got {len(w_a)} and {len(w_b)}")
        w = editing.interpolation_points(w_a, w_b, steps).transpose(1, 0, 2).reshape(-1, self.latent_dim)
        images = self.decode(w, as_uint8).reshape(len(w_a), steps, *self.image_shape)
        return images[0] if single else images

    def run_signature(self, name, inputs: dict) -> dict[str, np.ndarray]:
        """Run one of the export's signatures (`self.signatures`) by name on {input name: array},
        as the SavedModel would: the operation's ONNX graphs in order, uint8 images converted
        in numpy."""
        if not isinstance(inputs, dict):
            raise ValueError(f"inputs must be a dict {{input name: array}}, got {type(inputs).__name__}")
        signature = self.signatures.get(contract.resolve_signature_name(name))
        if signature is None:
            self._check_loaded(contract.resolve_signature_name(name))
            raise ValueError(f"unknown signature {name!r}; this export has {', '.join(sorted(self.signatures))}")
        values = contract.check_inputs(signature, inputs)
        if signature.operation.name == contract.METADATA:
            return {"metadata_json": np.array([self.metadata_json] * len(values["row"]))}
        return self._run_checked(signature, values)

    def _run_checked(self, signature, values: dict) -> dict[str, np.ndarray]:
        """`signature` on checked inputs (uint8 images converted to [-1, 1] here)."""
        values = {key: contract.to_model_range(v) if v.dtype == np.uint8 else v for key, v in values.items()}
        inputs = dict(values)
        for graph in signature.operation.onnx_graphs:
            values.update(self._run(graph, values))
        _check_outputs_finite(signature, inputs, values)
        return {spec.name: contract.to_uint8(values[spec.name]) if spec.dtype == "uint8" else values[spec.name]
                for spec in signature.outputs}

    def _with_noise(self, operation, noise) -> str:
        """The signature of `operation` that takes `noise` (its _noise form when there is noise to feed)."""
        return f"{operation}_noise" if noise is not None and self.noise_shapes else operation

    def _noise_inputs(self, noise) -> dict:
        if noise is None:
            return {}
        if not isinstance(noise, (list, tuple)):
            raise ValueError(f"noise: a list of {len(self.noise_shapes)} noise images [B, h, w, 1] or None, "
                             f"got {type(noise).__name__}")
        if len(noise) != len(self.noise_shapes):
            expected = f"{len(self.noise_shapes)} noise images" if self.noise_shapes else "none (its generator has no noise inputs)"
            raise ValueError(f"noise: this export takes {expected}, got {len(noise)}")
        return dict(zip(contract.noise_input_names(len(noise)), noise))

    def read_image(self, image, aligner=None) -> np.ndarray:
        """An image file as uint8 [H, W, C] of this model's image shape, read as training, edit and
        the studio read images (`serving.model_pixels`: EXIF orientation applied, the centre crop of
        the model's aspect ratio, transparency over black, resized (Lanczos), converted to grayscale
        or RGB). `image`: a path, the file's bytes (bytes, bytearray, memoryview) or a binary file
        object (open(..., "rb"), io.BytesIO, a web framework's upload): `serving.image_files` (PNG,
        JPEG, WebP or BMP of at most MAX_PIXELS pixels and MAX_SIDE a side); needs Pillow. np.stack(...) several for a batch.
        `aligner`: instead of the centre crop, a serving.faces.FaceAligner (the faces extra) takes the
        square of the photo's largest face, as the face models' images were cut; a
        serving.digits.DigitAligner frames a photographed or drawn digit as MNIST's; a ValueError
        where they find none."""
        try:
            from serving.image_files import ImageFileError, model_image
        except ImportError as exc:
            raise ImportError(f"read_image needs Pillow ({exc}): pip install pillow") from None

        if isinstance(image, (bytes, bytearray, memoryview)):
            data, name = bytes(image), None
        elif hasattr(image, "read"):
            data, name = image.read(), getattr(image, "name", None)
            if not isinstance(data, (bytes, bytearray)):
                raise ValueError(f"read_image: the file object gave {type(data).__name__}, not bytes; open it in binary mode (\"rb\")")
            name = name if isinstance(name, (str, os.PathLike)) else None
        elif isinstance(image, (str, os.PathLike)):
            if Path(image).is_dir():
                raise ValueError(f"{image}: a folder, not an image file")
            data, name = Path(image).read_bytes(), image
        else:
            raise ValueError(f"read_image takes a path, the file's bytes or a binary file object, got {type(image).__name__}")
        try:
            return model_image(data, self.image_shape, subject="the image" if name is None else "the file", reader="read_image",
                               aligner=aligner)[0]
        except ImageFileError as exc:
            raise ValueError(str(exc) if name is None else f"{name}: {exc}") from None

    def _run_on_images(self, name, images) -> dict[str, np.ndarray]:
        """Signature `name` (float images in) on uint8 pixels or float [-1, 1] images, each checked
        once as what it is (uint8 converted after the check: as floats, a light image's pixels would
        all lie in [0, 1] and be warned of as pixel / 255; checking twice cost ~15% of a batch-1
        int8 encode)."""
        images = contract.as_array(images, "images")
        try:
            if images.dtype != np.uint8:
                return self.run_signature(name, {"images": images})
            self._check_loaded(name)
            return self._run_checked(self.signatures[name], {"images": contract.check_images(images, self.image_shape)})
        except ValueError as exc:
            if images.shape[1:] == self.image_shape:
                raise
            raise ValueError(f"{exc}; read_image(path) reads an image file at this shape") from None

    @staticmethod
    def _images(images, as_uint8):
        if not isinstance(as_uint8, (bool, np.bool_)):
            raise ValueError(f"as_uint8 must be True or False, got {as_uint8!r}")
        return contract.to_uint8(images) if as_uint8 else images

    def _run(self, graph, values: dict) -> dict[str, np.ndarray]:
        """Run one ONNX graph, fed by input name from `values`, in chunks of at most max_batch_size rows."""
        session = self._sessions[graph]
        input_names, output_names = self._io_names[graph]
        feeds = {name: values[name] for name in input_names}
        batch = len(next(iter(feeds.values())))
        if batch <= self.max_batch_size:
            return dict(zip(output_names, session.run(output_names, feeds)))
        chunks = []
        for start in range(0, batch, self.max_batch_size):
            chunk = {key: value[start : start + self.max_batch_size] for key, value in feeds.items()}
            chunks.append(session.run(output_names, chunk))
        return {key: np.concatenate([c[i] for c in chunks]) for i, key in enumerate(output_names)}
