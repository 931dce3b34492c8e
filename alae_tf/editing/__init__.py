"""Latent editing of real images, on the one inference surface (`alae_tf.inference.Sampler`).

Rooms: `ranges` (named layer ranges: all / coarse / middle / fine), `labelled` (labelled images:
the run's dataset, class folders, attribute CSV), `directions` (fitting unit directions in W, the
run's directions.json), `official` (the official ALAE's direction_*.npy), `images` (the images a
command edits), `figures` (strength sweeps), `projection` (refining E(x) against LPIPS + MSE),
`success` (edit success read by the MNIST classifier), `arguments` (CLI pieces), `outputs` (the
files the CLIs write: checked up front, write errors reported in one line). The directions
file format and the numpy edit arithmetic live in `serving.editing`, which needs no TensorFlow.
CLIs: `python -m alae_tf.edit`, `python -m alae_tf.project`.
"""
