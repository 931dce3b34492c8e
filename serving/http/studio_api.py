"""The studio's JSON API on one ALAEOnnx model: each request body (a dict parsed from JSON, or an
uploaded file's bytes) checked and answered as a dict, images as PNG data URLs. No web framework
here (serving/http/studio.py routes it); every bad request raises `serving.rest.RequestError`
with a 4xx status and a message the page shows.

The page keeps what it works on as latent codes, so an edit, a mix or an interpolation runs G
alone. A code is w, a list of `latent_dim` numbers (E(x) of an upload or of a sample, or a
projection of one w), or w+, a list of `num_styles` such lists (a projection per style input):

    info                    -> the model's shape, directions (with the strength range), layer ranges
    sample {seed, truncation_psi}       -> {input, w, reconstruction}: G(F(z)) truncated, E of it, G(E(.))
    upload  PNG / JPEG / WebP bytes     -> {input, w, reconstruction, note}: the image at the model's size
    upload  projection.npz bytes, index -> {input, w, reconstruction, note, count}: image `index` of the
                                           file, its projected code and G of it
    projection {file, index}            -> the same for a projection file the server was started with
                                           (`file`: its position in info's "projections"), and `ref`:
                                           {file, index}, which names its refined noise images below
    edit {w, edits: [{direction, strength}], layers}  -> {image}: as ALAEOnnx.edit, for several directions at once
    mix {destination_w, source_w, layers}             -> {image}: as ALAEOnnx.mix
    interpolate {w_a, w_b, steps}                     -> {images}: as ALAEOnnx.interpolate (in w+ when
                                                         either code is one)

A projection file made with `project --noise` holds each image's refined noise images. Those of
a file on the server are used: edit takes `noise_of` (a `ref`), mix `destination_noise_of`, and
interpolate `noise_of_a` and `noise_of_b` (used when both are given: the noise goes from one's to
the other's). An uploaded file's are not (the page keeps codes only, and noise images can be
larger than the rest of the request).
"""

import functools
import json
import math

import numpy as np

from serving import editing, projection_file
from serving.contract import is_real_number
from serving.http import studio_images
from serving.onnx_model import ALAEOnnx
from serving.rest import RequestError

MAX_SEED = 2**32 - 1
PSI_RANGE = (0.0, 2.0)
DEFAULT_PSI = 0.7  # for exports made before their metadata carried the run's psi
DEFAULT_MAX_STRENGTH = 5.0  # for a direction whose info gives no reach (serving.editing.edit_reach)
MIN_STEPS = 2
MAX_STEPS = 32
ZIP_MAGIC = b"PK\x03\x04"  # an .npz archive (python -m alae_tf.project's projection.npz)


class Studio:
    def __init__(self, model: ALAEOnnx, max_batch: int, projections=(), aligner=None):
        """`projections`: (name, projection_file.ProjectionFile) pairs the page may open by name;
        `aligner`: what each upload is made into instead of its centre crop (--align-faces: a
        serving.faces.FaceAligner; --align-digits: a serving.digits.DigitAligner), or None."""
        self.model = model
        self.projections = list(projections)
        self.aligner = aligner
        self.max_steps = max(MIN_STEPS, min(MAX_STEPS, max_batch))
        self.max_strengths = {d.name: max_strength(d) for d in model.directions.directions}
        self.styles = model.num_styles or 1
        self.can_edit = "decode_styles" in model.signatures
        run_psi = model.metadata.get("truncation_psi")
        self.default_psi = DEFAULT_PSI if run_psi is None else min(max(run_psi, PSI_RANGE[0]), PSI_RANGE[1])

    def info(self) -> dict:
        height, width, channels = self.model.image_shape
        return {
            "model_name": self.model.metadata["model_name"],
            "version": self.model.version,
            "backbone": self.model.metadata.get("backbone"),
            "image_shape": [height, width, channels],
            "latent_dim": self.model.latent_dim,
            "num_styles": self.styles,
            # Edits and mixes need the per-layer styles graph (exports since the editing toolkit).
            "can_edit": self.can_edit,
            "directions": [{"name": name, "max_strength": limit} for name, limit in self.max_strengths.items()]
            if self.can_edit else [],
            # Named style-input ranges; a generator with one style input has only "all" to choose.
            "layer_ranges": {name: list(span) for name, span in self.model.layer_ranges.items()},
            # A grayscale model (MNIST-like) gets a drawing canvas; not where uploads are cut to a face.
            "can_draw": channels == 1 and (self.aligner is None or self.aligner.takes_drawings),
            # Refining E(x) against the image needs TensorFlow and LPIPS, which an ONNX export does not
            # carry: the page reconstructs with the encoder, or opens python -m alae_tf.project's file.
            "opens_projections": self.can_edit,
            # Projection files on the server (python -m serving.http --projections), opened without an upload.
            "projections": [{"name": name, "count": len(projection)} for name, projection in self.projections]
            if self.can_edit else [],
            # None: the model has nothing to truncate (the baselines decode z itself); the page hides ψ.
            "truncation_psi": {"default": self.default_psi, "min": PSI_RANGE[0], "max": PSI_RANGE[1]}
            if self.model.metadata.get("truncation_cutoff", 1) else None,
            # What uploads are made into, in a sentence (--align-faces, --align-digits); None: the centre crop.
            "aligns_uploads": self.aligner.description if self.aligner else None,
            "max_seed": MAX_SEED,
            "interpolation_steps": {"default": min(8, self.max_steps), "min": MIN_STEPS, "max": self.max_steps},
        }

    def sample(self, body: dict) -> dict:
        check_keys(body, required=("seed",), optional=("truncation_psi",))
        seed = integer(body, "seed", 0, MAX_SEED)
        psi = number(body, "truncation_psi", *PSI_RANGE) if "truncation_psi" in body else self.default_psi
        image = self._call(self.model.generate, n=1, seed=seed, truncation_psi=psi, as_uint8=True)[0]
        return self._subject(image)

    def upload(self, data: bytes, index: str | None = None) -> dict:
        """An image file, or image `index` (default 0) of a projection file (a zip archive)."""
        if data.startswith(ZIP_MAGIC):
            return self._projection(data, index)
        image, note = studio_images.model_image(data, self.model.image_shape, self.aligner)
        return {**self._subject(image), "note": note}

    def _projection(self, data: bytes, index: str | None) -> dict:
        self._require_styles("open a projection")
        try:
            projection = projection_file.read(data)
        except projection_file.ProjectionFileError as exc:
            raise RequestError(400, f"the upload starts as a zip archive (a projection.npz) but is not a usable "
                                    f"one: {exc}") from None
        try:
            position = 0 if index is None else int(index)
        except ValueError:
            position = -1
        return self._projected(projection, position, index)

    def projection(self, body: dict) -> dict:
        self._require_styles("open a projection")
        check_keys(body, required=("file", "index"))
        projection, index = self._server_image(body)
        return self._projected(projection, index, index, ref={"file": body["file"], "index": index})

    def _server_image(self, ref: dict, where: str | None = None):
        """(the server's projection file ref["file"], image index ref["index"]), both checked."""
        if not self.projections:
            raise RequestError(400, "this server was started without projection files (python -m serving.http --projections)")
        if isinstance(ref.get("file"), str):  # the name info lists, where its position is asked for
            raise RequestError(400, f"{f'{where}: ' if where else ''}file is the position of a projection in info's "
                                    f"projections (0 to {len(self.projections) - 1}), got the name {as_json(ref['file'])}")
        projection = self.projections[integer(ref, "file", 0, len(self.projections) - 1, where)][1]
        return projection, integer(ref, "index", 0, len(projection) - 1, where)

    def noise_of(self, body: dict, key: str) -> list | None:
        """The refined noise images of the server's projection image named by body[key] (a `ref`),
        [1, h, w, 1] each; None when the key is absent or the file holds none."""
        if key not in body:
            return None
        ref = body[key]
        if not isinstance(ref, dict):
            raise RequestError(400, f'{key} must be {{"file": F, "index": K}}, the ref of a projection on the server')
        check_keys(ref, required=("file", "index"), where=key)
        projection, index = self._server_image(ref, key)
        return projection.noise_of(index)

    def _projected(self, projection, position: int, asked, ref=None) -> dict:
        """Image `position` of a projection file (`asked`: the index as the request gave it; `ref`:
        the server file's {file, index}, None for an upload)."""
        mismatch = projection_file.shape_mismatch(projection, self.styles, self.model.latent_dim, self.model.image_shape,
                                                  "this model")
        if mismatch:
            raise RequestError(400, f"the projection's {mismatch}")
        count = len(projection)
        if not 0 <= position < count:
            raise RequestError(400, f"index {str(asked)[:20]!r} is not one of the file's {count} image(s) (0 to {count - 1})")
        styles = projection.styles[position:position + 1]
        code = styles[0] if projection.per_layer else styles[0, 0]
        noise = projection.noise_of(position) if ref else None
        reconstruction = self._call(self.model.decode_styles, styles, as_uint8=True, noise=noise)[0]
        answer = {"input": studio_images.png_data_url(projection.images[position]), "w": code.tolist(),
                  "reconstruction": studio_images.png_data_url(reconstruction),
                  "note": self._projection_note(projection, position, uploaded=ref is None), "count": count}
        return {**answer, "ref": ref} if ref else answer

    def _projection_note(self, projection, position: int, uploaded: bool) -> str:
        d = {name: float(values[position]) for name, values in projection.distances.items()}
        parts = [f"image {position + 1} of {len(projection)} of a projection "
                 f"({'w+, one w per style input' if projection.per_layer else 'one w'}): LPIPS {d['lpips']:.3f}, "
                 f"MSE {d['mse']:.4f} (the encoder alone: {d['encoder_lpips']:.3f}, {d['encoder_mse']:.4f})"]
        metadata = self.model.metadata
        exported = (metadata.get("run"), metadata.get("checkpoint"))  # absent from exports before 2026-12-02
        if None not in exported and exported != (projection.run, projection.checkpoint):
            parts.append(f"projected with {projection.run}'s {projection.checkpoint} (step {projection.training_step}), "
                         f"while this export is {metadata.get('run')}'s {metadata.get('checkpoint')} "
                         f"(step {metadata.get('training_step')}): it may reconstruct less well here")
        if projection.noise and uploaded:
            parts.append("its refined noise images are not used for an upload (open the file on the server, "
                         "python -m serving.http --projections, to use them)")
        elif projection.noise:
            parts.append("with its refined noise images: in this reconstruction, in edits and mixes as the first image, "
                         "and at its end of an interpolation")
        return "; ".join(parts)

    def edit(self, body: dict) -> dict:
        self._require_styles("edit")
        check_keys(body, required=("w", "edits"), optional=("layers", "noise_of"))
        w = self.code(body, "w")
        start, stop = self.layers(body)
        edits = body["edits"]
        if not isinstance(edits, list):  # its length is bounded below: each direction of the export at most once
            raise RequestError(400, "edits must be a list of {\"direction\": name, \"strength\": number} objects")
        styles = editing.as_styles(w, self.styles)
        seen = set()
        for index, entry in enumerate(edits):
            if not isinstance(entry, dict):
                raise RequestError(400, f"edits[{index}] must be an object {{\"direction\": name, \"strength\": number}}")
            check_keys(entry, required=("direction", "strength"), where=f"edits[{index}]")
            name = entry["direction"]
            if not isinstance(name, str) or name not in self.max_strengths:
                known = ", ".join(self.max_strengths) or "none"
                raise RequestError(400, f"unknown direction {str(name)[:100]!r}; this export has: {known}")
            if name in seen:
                raise RequestError(400, f"direction {name!r} appears twice in edits")
            seen.add(name)
            limit = self.max_strengths[name]
            strength = number(entry, "strength", -limit, limit, where=f"edits[{index}] ({name})")
            styles = editing.edit_styles(styles, self.model.directions.vector(name), strength, start, stop, self.styles)
        image = self._call(self.model.decode_styles, styles, as_uint8=True, noise=self.noise_of(body, "noise_of"))[0]
        return {"image": studio_images.png_data_url(image)}

    def mix(self, body: dict) -> dict:
        self._require_styles("mix")
        check_keys(body, required=("destination_w", "source_w"), optional=("layers", "destination_noise_of"))
        destination, source = self.code(body, "destination_w"), self.code(body, "source_w")
        start, stop = self.layers(body)
        styles = editing.mix_styles(destination, source, start, stop, self.styles)
        noise = self.noise_of(body, "destination_noise_of")
        image = self._call(self.model.decode_styles, styles, as_uint8=True, noise=noise)[0]
        return {"image": studio_images.png_data_url(image)}

    def interpolate(self, body: dict) -> dict:
        check_keys(body, required=("w_a", "w_b"), optional=("steps", "noise_of_a", "noise_of_b"))
        w_a, w_b = self.code(body, "w_a"), self.code(body, "w_b")
        steps = integer(body, "steps", MIN_STEPS, self.max_steps) if "steps" in body else min(8, self.max_steps)
        noise_a, noise_b = self.noise_of(body, "noise_of_a"), self.noise_of(body, "noise_of_b")
        points = functools.partial(editing.interpolation_points, steps=steps)  # of one row each: [steps, ...]
        if noise_a and noise_b:  # both ends with their refined noise: the noise goes from one's to the other's
            self._require_styles("interpolate with noise images")
            a, b = editing.as_styles(w_a, self.styles), editing.as_styles(w_b, self.styles)
            noise = [points(n_a[0], n_b[0]) for n_a, n_b in zip(noise_a, noise_b)]
            images = self._call(self.model.decode_styles, points(a[0], b[0]), as_uint8=True, noise=noise)
        elif w_a.ndim == w_b.ndim == 2:
            images = self._call(self.model.decode, points(w_a[0], w_b[0]), as_uint8=True)  # as ALAEOnnx.interpolate
        else:
            self._require_styles("interpolate per-layer codes")
            a, b = editing.as_styles(w_a, self.styles), editing.as_styles(w_b, self.styles)
            images = self._call(self.model.decode_styles, points(a[0], b[0]), as_uint8=True)
        return {"images": [studio_images.png_data_url(image) for image in images]}

    def code(self, body: dict, key: str) -> np.ndarray:
        """body[key] as w [1, latent_dim] or w+ [1, num_styles, latent_dim], float32."""
        value = body[key]
        size = self.model.latent_dim

        def is_w(entry) -> bool:
            return isinstance(entry, list) and len(entry) == size and all(is_real_number(x) for x in entry)

        per_layer = isinstance(value, list) and len(value) == self.styles and all(is_w(entry) for entry in value)
        if not (is_w(value) or per_layer):
            raise RequestError(400, f"{key} must be a list of {size} numbers (a latent code w from sample or upload)"
                                    + (f", or {self.styles} such lists (w+ from a projection)" if self.styles > 1 else ""))
        try:
            w = np.asarray(value, dtype=np.float64)
        except OverflowError:  # integers beyond float64
            w = np.full(np.shape(value), np.inf)
        if not np.isfinite(w).all() or np.abs(w).max() > np.finfo(np.float32).max:
            raise RequestError(400, f"{key} holds numbers beyond float32's range")
        return w.astype(np.float32)[np.newaxis]

    def layers(self, body: dict) -> tuple[int, int]:
        name = body.get("layers", "all")
        if not isinstance(name, str) or name not in self.model.layer_ranges:
            raise RequestError(400, f"unknown layer range {str(name)[:100]!r}; this export has: "
                                    f"{', '.join(self.model.layer_ranges) or 'none'}")
        return self.model.layer_ranges[name]

    def _subject(self, image: np.ndarray) -> dict:
        """What the page works on: the image, its code w = E(image) and the reconstruction G(w)."""
        w = self._call(self.model.encode, image[np.newaxis])
        reconstruction = self._call(self.model.decode, w, as_uint8=True)[0]
        return {"input": studio_images.png_data_url(image), "w": [float(x) for x in w[0]],
                "reconstruction": studio_images.png_data_url(reconstruction)}

    def _require_styles(self, what: str):
        if not self.can_edit:
            raise RequestError(400, f"this export has no per-layer styles graph (decode_styles), so it cannot {what}; "
                                    "export the run again")

    @staticmethod
    def _call(function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except ValueError as exc:  # the model's own checks (e.g. latents so large the outputs overflow)
            raise RequestError(400, str(exc)) from None


def max_strength(direction: editing.Direction) -> float:
    """How far the direction's slider reaches either way (the server refuses more)."""
    reach = editing.edit_reach(direction)
    return DEFAULT_MAX_STRENGTH if reach is None else round(reach, 2)


def check_keys(body: dict, required=(), optional=(), where="the request") -> None:
    missing = [key for key in required if key not in body]
    unknown = sorted(set(body) - set(required) - set(optional))
    if missing or unknown:
        problems = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unknown key(s) {', '.join(k[:50] for k in unknown)}"] if unknown else [])
        expected = ", ".join(list(required) + [f"{key} (optional)" for key in optional])
        raise RequestError(400, f"{where}: {'; '.join(problems)}; expected {expected}")


def number(body: dict, key: str, low: float, high: float, where: str | None = None) -> float:
    value = body[key]
    label = f"{where}: {key}" if where else key
    if not is_real_number(value) or not math.isfinite(float(value) if abs(value) < 1e308 else math.inf):
        raise RequestError(400, f"{label} must be a finite number, got {as_json(value)}")
    if not low <= value <= high:
        raise RequestError(400, f"{label} {value:g} is outside [{low:g}, {high:g}]")
    return float(value)


def integer(body: dict, key: str, low: int, high: int, where: str | None = None) -> int:
    value = body[key]
    label = f"{where}: {key}" if where else key
    if not isinstance(value, int) or isinstance(value, bool):
        raise RequestError(400, f"{label} must be an integer, got {'nothing' if value is None else as_json(value)}")
    if not low <= value <= high:
        raise RequestError(400, f"{label} {value} is outside [{low}, {high}]")
    return value


def as_json(value) -> str:
    """A request's value as the client wrote it (null, not None), cut to 50 characters."""
    return json.dumps(value)[:50]
