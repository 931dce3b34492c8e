"""Train alae_tf on several Ray workers with Ray Train's TensorflowTrainer.

Ready to edit, NOT tested against a real Ray cluster. TensorflowTrainer writes TF_CONFIG in every
worker before it calls `train_loop_per_worker`; `--strategy auto` then picks MultiWorkerMirroredStrategy.
`--out` must be a path every Ray node reaches (a shared filesystem): the chief (rank 0) writes the
run there and every worker resumes from its checkpoints. alae_tf keeps its own checkpoints there;
Ray's Checkpoint API is not used.

    pip install "ray[train]" -e .    # on every node
    python examples/multiworker/ray_train.py --workers 2 --out /shared/runs/mnist_style32
"""

import argparse


def train_loop_per_worker(config):
    from alae_tf import train  # imported in the worker, after Ray has set TF_CONFIG

    code = train.main(["--strategy", "multiworker", "--out", config["out"], *config["train_args"]])
    if code != 0:
        raise RuntimeError(f"alae_tf.train exited with {code}; see this worker's log")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gpus-per-worker", type=int, default=0)
    parser.add_argument("--out", required=True, help="run directory on storage every worker shares")
    parser.add_argument("train_args", nargs="*", default=["--preset", "mnist_style32", "--verbose", "2"],
                        help="flags for python -m alae_tf.train (after --)")
    args = parser.parse_args()
    if args.workers < 1 or args.gpus_per_worker < 0:
        parser.error("--workers must be at least 1 and --gpus-per-worker at least 0")

    try:
        from ray.train import FailureConfig, RunConfig, ScalingConfig
        from ray.train.tensorflow import TensorflowTrainer
    except ImportError as exc:
        parser.error(f"Ray Train is not installed here ({exc}); pip install \"ray[train]\" on every node")

    trainer = TensorflowTrainer(
        train_loop_per_worker,
        train_loop_config={"out": args.out, "train_args": args.train_args},
        scaling_config=ScalingConfig(num_workers=args.workers, use_gpu=args.gpus_per_worker > 0,
                                     resources_per_worker={"GPU": args.gpus_per_worker} if args.gpus_per_worker else None),
        # A failed worker fails the group; Ray restarts all of them and alae_tf resumes.
        run_config=RunConfig(failure_config=FailureConfig(max_failures=3)),
    )
    trainer.fit()


if __name__ == "__main__":
    main()
