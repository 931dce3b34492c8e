"""Where an export keeps its files (numpy-free, TensorFlow-free):

    EXPORT/tf_serving/models.config               model_config_list, base paths under /models (Docker)
    EXPORT/tf_serving/models.host.config          the same with this machine's absolute paths
    EXPORT/tf_serving/batching_parameters.txt     for --enable_batching
    EXPORT/tf_serving/NAME/VERSION/               SavedModel (+ assets.extra/)
    EXPORT/onnx/NAME/VERSION/                     one GRAPH.onnx per graph of serving.contract.onnx_graphs
                                                  (encode, decode, generate; StyleALAE: also decode_noise,
                                                  generate_noise), GRAPH.int8.onnx with --onnx-int8, metadata.json
"""

import json
import re
from pathlib import Path

TF_SERVING = "tf_serving"
MAX_NAME_LENGTH = 64
# Model names go into URLs (/v1/models/NAME:predict), directory names and models.config.
MODEL_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_NAME_LENGTH - 1}}}")
ONNX = "onnx"
ONNX_METADATA = "metadata.json"
SAVED_MODEL_METADATA = "assets.extra/alae_metadata.json"
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"


def is_model_name(name: str) -> bool:
    return MODEL_NAME.fullmatch(name) is not None


def saved_model_dir(export_dir, name, version) -> Path:
    return Path(export_dir) / TF_SERVING / name / str(version)


def onnx_dir(export_dir, name, version) -> Path:
    return Path(export_dir) / ONNX / name / str(version)


FLOAT32, INT8 = "float32", "int8"
ONNX_VARIANTS = (FLOAT32, INT8)  # float32: GRAPH.onnx; int8 (python -m export --onnx-int8): GRAPH.int8.onnx


def onnx_file(graph, variant=FLOAT32) -> str:
    return f"{graph}.onnx" if variant == FLOAT32 else f"{graph}.{variant}.onnx"


VERSION_NAME = re.compile(r"[0-9]+")  # as TF-Serving reads version directories: "7", or zero-padded "00000007"


def version_dirs(model_dir) -> list[tuple[int, Path]]:
    """(version, directory) of the integer-named version directories under a model directory, ascending."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted((int(p.name), p) for p in model_dir.iterdir() if p.is_dir() and VERSION_NAME.fullmatch(p.name))


def versions(model_dir) -> list[int]:
    return [version for version, _ in version_dirs(model_dir)]


def model_names(export_dir, kind=TF_SERVING) -> list[str]:
    root = Path(export_dir) / kind
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and is_model_name(p.name) and versions(p))


def find_onnx_model_dir(path, name=None) -> Path | None:
    """EXPORT/onnx/NAME from EXPORT or from itself; None when `path` is a version directory.

    Raises FileNotFoundError naming what is missing, ValueError when EXPORT holds several models
    and no name picks one, or when `path` is one model's and `name` another's."""
    path = Path(path)
    if (path / ONNX_METADATA).is_file():
        if name is not None:
            _check_model_name(path, read_metadata(path).get("model_name"), name)
        return None
    if present := version_dirs(path):
        if (present[-1][1] / "saved_model.pb").is_file():
            raise FileNotFoundError(f"{path} holds SavedModels (for tensorflow_model_server); the ONNX files of the "
                                    f"same export are in {path.parent.parent / ONNX / path.name}: pass that, or the "
                                    "export directory")
        if name is not None:
            _check_model_name(path, path.name, name)  # EXPORT/onnx/NAME
        return path
    names = model_names(path, ONNX)
    if name is None:
        if len(names) > 1:
            raise ValueError(f"{path}: models {', '.join(names)}: pick one by name (--name, or name= in ALAEOnnx)")
        if not names and VERSION_NAME.fullmatch(path.name) and path.is_dir():
            raise missing_metadata(path)
        if not names:
            raise FileNotFoundError(f"{path}: {not_an_export(path)}")
        name = names[0]
    elif name not in names:
        raise FileNotFoundError(f"{path}: no ONNX export of model {name!r} (found: {', '.join(names) or 'none'})")
    return path / ONNX / name


def not_an_export(path: Path) -> str:
    """Why `path`, holding no export's ONNX files, is none: missing, a training run, or something else."""
    if not path.exists():
        return "no such file or directory"
    if (path / "config.yaml").is_file() and (path / "checkpoints").is_dir():
        return (f"a training run, not an export: export it first (python -m export --run {path} --out EXPORT), "
                "then pass EXPORT")
    return "no ONNX export (expected EXPORT, EXPORT/onnx/NAME or EXPORT/onnx/NAME/VERSION)"


def _check_model_name(path, found, name):
    if found != name:
        raise ValueError(f"{path} is model {found!r}, not {name!r}: pass {name!r}'s own directory, or its export "
                         "directory")


def onnx_version_dirs_newest_first(path, name=None) -> list[Path]:
    """The ONNX version directories `path` stands for, newest first: itself when it is one, else
    the versions of EXPORT/onnx/NAME or of EXPORT's model."""
    model_dir = find_onnx_model_dir(path, name)
    return [Path(path)] if model_dir is None else [directory for _, directory in reversed(version_dirs(model_dir))]


def find_onnx_version_dir(path, name=None) -> Path:
    """An ONNX version directory from itself, EXPORT/onnx/NAME, or EXPORT (the newest version)."""
    return onnx_version_dirs_newest_first(path, name)[0]


def missing_metadata(version_dir: Path) -> FileNotFoundError:
    version_dir = Path(version_dir)
    if (version_dir / "saved_model.pb").is_file():
        model_dir = version_dir.parent
        return FileNotFoundError(f"{version_dir} is a SavedModel (for tensorflow_model_server); the ONNX files of the "
                                 f"same export are in {model_dir.parent.parent / ONNX / model_dir.name / version_dir.name}: "
                                 "pass that, or the export directory")
    return FileNotFoundError(f"{version_dir / ONNX_METADATA} is missing: {version_dir} is not a complete export "
                             "version (still being copied in?)")


def read_metadata(onnx_version_dir) -> dict:
    """The version's metadata.json; FileNotFoundError or ValueError naming the file when it is
    missing (a version still being copied in) or damaged."""
    path = Path(onnx_version_dir) / ONNX_METADATA
    try:
        metadata = json.loads(path.read_text())
    except FileNotFoundError:
        raise missing_metadata(path.parent) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is damaged ({exc}); export the run again") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"{path} is damaged (not a JSON object); export the run again")
    # Served to clients, so names only: exports before 9068c69 recorded absolute paths here.
    for key in ("run", "checkpoint"):
        if isinstance(metadata.get(key), str):
            metadata[key] = Path(metadata[key]).name
    return metadata
