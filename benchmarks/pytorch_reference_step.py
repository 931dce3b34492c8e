"""The official ALAE MNIST MLP training step, re-written here in PyTorch eager mode, as the
same-machine baseline for benchmarks/train_throughput.py (the official repository itself
cannot be fetched on our machines; this follows its algorithm: equalized-lr linear layers,
F/G/E/D of the mnist_fc config, steps I (with R1, gamma 10), II and III, two Adams with
betas (0, 0.99)). Needs only torch:

    pip install torch && python benchmarks/pytorch_reference_step.py

Prints one line per timed window, then a JSON object on the last line.
"""

import argparse
import json
import math
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F


class EqualizedLinear(torch.nn.Module):
    def __init__(self, fan_in, fan_out, lr_mul=1.0, gain=math.sqrt(2.0)):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(fan_out, fan_in) / lr_mul)
        self.bias = torch.nn.Parameter(torch.zeros(fan_out))
        self.scale = lr_mul * gain / math.sqrt(fan_in)
        self.lr_mul = lr_mul

    def forward(self, x):
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


def mlp(sizes, lr_mul=1.0, activate_last=False, activate=True):
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        layers.append(EqualizedLinear(fan_in, fan_out, lr_mul))
        if activate and (activate_last or i < len(sizes) - 2):
            layers.append(torch.nn.LeakyReLU(0.2))
    return torch.nn.Sequential(*layers)


class Mapping(torch.nn.Module):
    def __init__(self, latent, layers):
        super().__init__()
        self.net = mlp([latent] * (layers + 1), lr_mul=0.1, activate_last=True)

    def forward(self, z):
        z = z * torch.rsqrt(torch.mean(z * z, dim=1, keepdim=True) + 1e-8)
        return self.net(z)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--windows", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    latent, batch = 50, args.batch_size
    mapping = Mapping(latent, 6)
    generator = mlp([latent, 1024, 1024, 784])
    encoder = mlp([784, 1024, 1024, latent], activate_last=True)
    discriminator = mlp([latent, 50, 50, 1], lr_mul=0.1, activate=False)
    adam = dict(lr=0.002, betas=(0.0, 0.99), eps=1e-8)
    opt_ed = torch.optim.Adam(list(encoder.parameters()) + list(discriminator.parameters()), **adam)
    opt_fg = torch.optim.Adam(list(mapping.parameters()) + list(generator.parameters()), **adam)
    reals = torch.rand(batch, 784) * 2 - 1
    frozen = list(encoder.parameters()) + list(discriminator.parameters())

    def step():
        # Step I: E, D; fakes without gradient; R1 on reals.
        with torch.no_grad():
            fakes = generator(mapping(torch.randn(batch, latent)))
        x = reals.clone().requires_grad_(True)
        d_real = discriminator(encoder(x))[:, 0]
        grads = torch.autograd.grad(d_real.sum(), x, create_graph=True)[0]
        r1 = 5.0 * grads.pow(2).sum(dim=1)
        loss_d = (F.softplus(discriminator(encoder(fakes))[:, 0]) + F.softplus(-d_real) + r1).mean()
        opt_ed.zero_grad()
        loss_d.backward()
        opt_ed.step()
        # Step II: F, G; E and D frozen (no weight gradients computed for them).
        for p in frozen:
            p.requires_grad_(False)
        loss_g = F.softplus(-discriminator(encoder(generator(mapping(torch.randn(batch, latent)))))[:, 0]).mean()
        opt_fg.zero_grad()
        loss_g.backward()
        opt_fg.step()
        for p in frozen:
            p.requires_grad_(True)
        # Step III: latent reciprocity for E, G and F.
        w = mapping(torch.randn(batch, latent))
        loss_lae = torch.mean((encoder(generator(w)) - w.detach()) ** 2)
        opt_ed.zero_grad()
        opt_fg.zero_grad()
        loss_lae.backward()
        opt_ed.step()
        opt_fg.step()

    for _ in range(args.warmup):
        step()
    rates = []
    for i in range(args.windows):
        start = time.perf_counter()
        for _ in range(args.window):
            step()
        rates.append(args.window / (time.perf_counter() - start))
        print(f"window {i}: {rates[-1]:.2f} steps/s")
    steps_per_sec = statistics.median(rates)
    params = sum(p.numel() for m in (mapping, generator, encoder, discriminator) for p in m.parameters())
    print(json.dumps({
        "benchmark": "pytorch_reference_step",
        "batch_size": batch,
        "parameters": params,
        "steps_per_sec": round(steps_per_sec, 2),
        "images_per_sec": round(steps_per_sec * batch, 1),
        "window_steps_per_sec": [round(r, 2) for r in rates],
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
    }))


if __name__ == "__main__":
    main()
