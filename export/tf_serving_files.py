"""Files for tensorflow_model_server: the models config, batching parameters and warm-up requests."""

from pathlib import Path

import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from alae_tf.atomic_file import write_text_atomically
from serving.client import predict_request
from serving.contract import example_inputs
from serving.layout import TF_SERVING, WARMUP_FILE, model_names

CONTAINER_BASE = "/models"  # where serving/docker-compose.yml mounts EXPORT/tf_serving

# Runs batches of up to 64 rows, waiting at most 2 ms for one to fill; sized for a small CPU host.
# A request may carry up to 256 rows, as python -m serving.http takes by default (--max-batch):
# with large batch splitting, max_batch_size bounds a request and max_execution_batch_size a run
# (without it, TF-Serving refuses any request above max_batch_size; tensorflow/serving#1401).
BATCHING_PARAMETERS = """\
max_batch_size { value: 256 }
enable_large_batch_splitting { value: true }
max_execution_batch_size { value: 64 }
batch_timeout_micros { value: 2000 }
max_enqueued_batches { value: 100 }
num_batch_threads { value: 2 }
"""


def models_config(base_paths: dict[str, str]) -> str:
    """A ModelServerConfig in text format (written by protobuf, so any path is quoted correctly)."""
    config = model_server_config_pb2.ModelServerConfig()
    for name, path in base_paths.items():
        config.model_config_list.config.add(name=name, base_path=path, model_platform="tensorflow")
    return text_format.MessageToString(config)


def write_server_files(export_dir: Path) -> None:
    """models.config (container paths), models.host.config (this machine's paths) and the
    batching parameters, listing every model under EXPORT/tf_serving."""
    root = Path(export_dir) / TF_SERVING
    names = model_names(export_dir)
    write_text_atomically(root / "models.config", models_config({name: f"{CONTAINER_BASE}/{name}" for name in names}))
    write_text_atomically(root / "models.host.config", models_config({name: str((root / name).resolve()) for name in names}))
    write_text_atomically(root / "batching_parameters.txt", BATCHING_PARAMETERS)



def write_warmup_requests(saved_model_dir: Path, model_name: str, signatures: dict, batches=(1, 64)) -> int:
    """One request per signature at each batch size: TF-Serving replays them at load."""
    path = Path(saved_model_dir) / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with tf.io.TFRecordWriter(str(path)) as writer:
        for name, signature in signatures.items():
            for batch in batches:
                request = predict_request(model_name, name, example_inputs(signature, batch))
                log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
                writer.write(log.SerializeToString())
                count += 1
    return count
