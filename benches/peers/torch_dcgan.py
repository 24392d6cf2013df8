#!/usr/bin/env python3
"""The PyTorch speed peer of `shadergan bench`'s "DCGAN step" cases: the
TensorFlow DCGAN tutorial's model as nn.Sequential, the layer lists of
`SeqGanConfig::tf_dcgan` (src/gan/seq_step.rs), trained with the loop of
PyTorch's DCGAN example as shadergan runs it: one G forward per step, D on
[real; fake] as one batch, the G step through the updated D on the same fake
batch. Adam(1e-4, 0.5, 0.999), BCE on logits, random 8-bit images resident
on the device, fp32 with TF32 off (cuDNN too).

    python3 benches/peers/torch_dcgan.py --batch 64 --steps 500 [--graphs] [--json]
    python3 benches/peers/torch_dcgan.py --sweep        # eager and CUDA graphs at batch 64 and 256
"""
import argparse
import json
import time

import torch
from torch import nn


def generator():
    leaky = lambda: nn.LeakyReLU(0.3)
    return nn.Sequential(
        nn.Linear(100, 7 * 7 * 256, bias=False), nn.BatchNorm1d(7 * 7 * 256), leaky(),
        nn.Unflatten(1, (256, 7, 7)),
        nn.ConvTranspose2d(256, 128, 5, 1, 2, bias=False), nn.BatchNorm2d(128), leaky(),
        nn.ConvTranspose2d(128, 64, 5, 2, 2, output_padding=1, bias=False), nn.BatchNorm2d(64), leaky(),
        nn.ConvTranspose2d(64, 1, 5, 2, 2, output_padding=1, bias=False), nn.Tanh(),
    )


def discriminator():
    leaky = lambda: nn.LeakyReLU(0.3)
    return nn.Sequential(
        nn.Conv2d(1, 64, 5, 2, 2), leaky(), nn.Dropout(0.3),
        nn.Conv2d(64, 128, 5, 2, 2), leaky(), nn.Dropout(0.3),
        nn.Flatten(), nn.Linear(128 * 7 * 7, 1),
    )


def make_step(G, D, opt_g, opt_d, x, batch):
    n, dev = x.shape[0], x.device
    bce = nn.BCEWithLogitsLoss()
    targets = torch.cat([torch.ones(batch, 1, device=dev), torch.zeros(batch, 1, device=dev)])
    ones = torch.ones(batch, 1, device=dev)
    g_params, d_params = list(G.parameters()), list(D.parameters())

    def step():
        real = x[torch.randint(0, n, (batch,), device=dev)].float().div(127.5).sub(1.0).view(batch, 1, 28, 28)
        fake = G(torch.randn(batch, 100, device=dev))
        s = D(torch.cat([real, fake.detach()]))
        d_loss = bce(s[:batch], targets[:batch]) + bce(s[batch:], targets[batch:])
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward(inputs=d_params)
        opt_d.step()
        g_loss = bce(D(fake), ones)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward(inputs=g_params)
        opt_g.step()
        return d_loss, g_loss

    return step


def run(batch, steps, graphs, warmup=10):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    dev = "cuda"
    torch.manual_seed(0)
    x = torch.randint(0, 256, (10_000, 784), dtype=torch.uint8, device=dev)
    G, D = generator().to(dev), discriminator().to(dev)
    opt = lambda m: torch.optim.Adam(m.parameters(), lr=1e-4, betas=(0.5, 0.999), capturable=graphs)
    opt_g, opt_d = opt(G), opt(D)
    step = make_step(G, D, opt_g, opt_d, x, batch)
    if graphs:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        run_one = graph.replay
    else:
        for _ in range(warmup):
            step()
        run_one = step
    torch.cuda.synchronize()
    start = time.time()
    for _ in range(steps):
        run_one()
    torch.cuda.synchronize()
    return steps / (time.time() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--graphs", action="store_true", help="replay the whole step as a CUDA graph")
    p.add_argument("--sweep", action="store_true", help="eager and CUDA graphs at batch 64 and 256")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    configs = [(b, g) for b in (64, 256) for g in (False, True)] if a.sweep else [(a.batch, a.graphs)]
    for batch, graphs in configs:
        rate = run(batch, a.steps, graphs)
        mode = "cuda-graphs" if graphs else "eager"
        if a.json:
            print(json.dumps({"model": "dcgan", "batch": batch, "mode": mode, "steps_per_s": rate}))
        else:
            print(f"torch {torch.__version__} DCGAN step, batch {batch}, {mode}: {rate:.1f} steps/s")


if __name__ == "__main__":
    main()
