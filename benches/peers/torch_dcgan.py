#!/usr/bin/env python3
"""The PyTorch peer of shadergan's DCGAN: the TensorFlow DCGAN tutorial's
model as nn.Sequential, built from the layer lists of `LayerModel::tf_dcgan`
(GENERATOR and DISCRIMINATOR below, as shadergan's checkpoints write them),
trained with the loop of PyTorch's DCGAN example as shadergan runs it: one G
forward per step, D on [real; fake] as one batch, the G step through the
updated D on the same fake batch. Adam(1e-4, 0.5, 0.999), BCE on logits,
PyTorch's default init, 8-bit images resident on the device, fp32 with TF32
off (cuDNN too).

Two modes:
- speed (no --data): the peer of `shadergan bench`'s "DCGAN step" cases, on
  random 8-bit images, 10 untimed warm-up steps, then --steps timed;
- quality (--data DIR): trains on DIR/train-images-idx3-ubyte.gz (MNIST's
  idx format, or Fashion-MNIST's) for exactly --steps (or --epochs) steps
  and, with --out, writes a checkpoint in shadergan's format (layer-list
  model metadata, no optimizer state, no recipe), so
  `shadergan eval --checkpoint FILE` scores it with shadergan's protocol.

    python3 benches/peers/torch_dcgan.py --batch 64 --steps 500 [--graphs] [--json]
    python3 benches/peers/torch_dcgan.py --sweep        # eager and CUDA graphs at batch 64 and 256
    python3 benches/peers/torch_dcgan.py --data ../shared/data/mnist --epochs 20 --batch 256 \\
        --seed 1 --out torch-dcgan.safetensors [--graphs]
    python3 benches/peers/torch_dcgan.py --data ../shared/data/fashion-mnist --dataset fashion-mnist \\
        --epochs 20 --batch 256 --out torch-dcgan-fashion.safetensors

--g-ema BETA keeps G's moving average as shadergan's --g-ema does (parameters
and running statistics, after each G step) and saves it as generator_ema.*,
which `shadergan eval` then scores.
"""
import argparse
import copy
import gzip
import json
import math
import struct
import time

import numpy as np
import torch
from torch import nn

Z_DIM = 100
DATA_SHAPE = [1, 28, 28]

# The TensorFlow DCGAN tutorial's networks as shadergan's layer lists
# (src/nn/layers.rs `Layer`, serde-tagged by "layer"): written verbatim into
# the checkpoint's `model` metadata, and what `build` turns into nn.Sequential.
GENERATOR = [
    {"layer": "Linear", "out": 7 * 7 * 256, "bias": False},
    {"layer": "BatchNorm1d"},
    {"layer": "LeakyReLU", "slope": 0.3},
    {"layer": "Reshape", "shape": [256, 7, 7]},
    {"layer": "ConvTranspose2d", "out_channels": 128, "kernel": 5, "bias": False,
     "stride": 1, "padding": 2, "output_padding": 0},
    {"layer": "BatchNorm2d"},
    {"layer": "LeakyReLU", "slope": 0.3},
    {"layer": "ConvTranspose2d", "out_channels": 64, "kernel": 5, "bias": False,
     "stride": 2, "padding": 2, "output_padding": 1},
    {"layer": "BatchNorm2d"},
    {"layer": "LeakyReLU", "slope": 0.3},
    {"layer": "ConvTranspose2d", "out_channels": 1, "kernel": 5, "bias": False,
     "stride": 2, "padding": 2, "output_padding": 1},
    {"layer": "Tanh"},
]
DISCRIMINATOR = [
    {"layer": "Conv2d", "out_channels": 64, "kernel": 5, "bias": True, "stride": 2, "padding": 2},
    {"layer": "LeakyReLU", "slope": 0.3},
    {"layer": "Dropout", "p": 0.3},
    {"layer": "Conv2d", "out_channels": 128, "kernel": 5, "bias": True, "stride": 2, "padding": 2},
    {"layer": "LeakyReLU", "slope": 0.3},
    {"layer": "Dropout", "p": 0.3},
    {"layer": "Flatten"},
    {"layer": "Linear", "out": 1, "bias": True},
]


class Reshape(nn.Module):
    """A Reshape whose input is not flat (nn.Unflatten covers the flat case)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self):
        return f"shape={self.shape}"


def build(layers, input_shape):
    """nn.Sequential of a shadergan layer list, for one sample of
    `input_shape` (no batch axis); the shapes are chained as shadergan
    chains them, and a list that does not chain is refused naming the layer.
    Omitted fields take shadergan's defaults (bias true, stride 1, padding 0)."""
    shape = list(input_shape)
    modules = []
    for i, spec in enumerate(layers):
        kind = spec["layer"]

        def need(rank, what):
            if len(shape) != rank:
                raise ValueError(f"layer {i} ({kind}) takes {what}, got {shape}")

        if kind == "Linear":
            need(1, "[features] (Flatten first)")
            modules.append(nn.Linear(shape[0], spec["out"], bias=spec.get("bias", True)))
            shape = [spec["out"]]
        elif kind in ("Conv2d", "ConvTranspose2d"):
            need(3, "[C, H, W] images")
            c, h, w = shape
            k, s, p = spec["kernel"], spec.get("stride", 1), spec.get("padding", 0)
            if kind == "Conv2d":
                modules.append(nn.Conv2d(c, spec["out_channels"], k, stride=s, padding=p,
                                         bias=spec.get("bias", True)))
                size = lambda n: (n + 2 * p - k) // s + 1
            else:
                op = spec.get("output_padding", 0)
                modules.append(nn.ConvTranspose2d(c, spec["out_channels"], k, stride=s, padding=p,
                                                  output_padding=op, bias=spec.get("bias", True)))
                size = lambda n: (n - 1) * s - 2 * p + k + op
            shape = [spec["out_channels"], size(h), size(w)]
            if min(shape[1:]) < 1:
                raise ValueError(f"layer {i} ({kind}) gives no valid output for {[c, h, w]}")
        elif kind == "BatchNorm1d":
            need(1, "[features]")
            modules.append(nn.BatchNorm1d(shape[0]))
        elif kind == "BatchNorm2d":
            need(3, "[C, H, W] images")
            modules.append(nn.BatchNorm2d(shape[0]))
        elif kind == "LeakyReLU":
            modules.append(nn.LeakyReLU(spec["slope"]))
        elif kind == "ReLU":
            modules.append(nn.ReLU())
        elif kind == "Tanh":
            modules.append(nn.Tanh())
        elif kind == "Sigmoid":
            modules.append(nn.Sigmoid())
        elif kind == "Dropout":
            modules.append(nn.Dropout(spec["p"]))
        elif kind == "Reshape":
            target = list(spec["shape"])
            if math.prod(target) != math.prod(shape):
                raise ValueError(f"layer {i} (Reshape) cannot make {target} of {shape}")
            modules.append(nn.Unflatten(1, tuple(target)) if len(shape) == 1 else Reshape(target))
            shape = target
        elif kind == "Flatten":
            modules.append(nn.Flatten())
            shape = [math.prod(shape)]
        else:
            raise ValueError(f"layer {i}: unknown layer {kind!r}")
    return nn.Sequential(*modules)


def generator():
    return build(GENERATOR, [Z_DIM])


def discriminator():
    return build(DISCRIMINATOR, DATA_SHAPE)


def adam(m, lr, beta1, capturable):
    return torch.optim.Adam(m.parameters(), lr=lr, betas=(beta1, 0.999), capturable=capturable)


def averaged_tensors(G):
    """What G's moving average covers, as shadergan's: parameters and the
    running statistics (not the batch counts)."""
    buffers = [b for name, b in G.named_buffers() if not name.endswith("num_batches_tracked")]
    return list(G.parameters()) + buffers


def make_step(G, D, opt_g, opt_d, x, batch, ema=None, beta=0.0):
    """One D step then one G step; with `ema` (a copy of G), then
    ema <- beta*ema + (1-beta)*G over its parameters and running statistics."""
    n, dev = x.shape[0], x.device
    bce = nn.BCEWithLogitsLoss()
    targets = torch.cat([torch.ones(batch, 1, device=dev), torch.zeros(batch, 1, device=dev)])
    ones = torch.ones(batch, 1, device=dev)
    g_params, d_params = list(G.parameters()), list(D.parameters())
    if ema is not None:
        ema_tensors, g_tensors = averaged_tensors(ema), averaged_tensors(G)

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
        if ema is not None:
            with torch.no_grad():
                torch._foreach_lerp_(ema_tensors, g_tensors, 1.0 - beta)
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
    opt_g, opt_d = adam(G, 1e-4, 0.5, graphs), adam(D, 1e-4, 0.5, graphs)
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


def read_images(path):
    """uint8 [N, rows*cols] of an idx image file (gzip or not)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    assert magic == 2051, f"{path}: not an IDX image file"
    assert [rows, cols] == DATA_SHAPE[1:], f"{path}: {rows}x{cols} images, the DCGAN takes 28x28"
    return np.frombuffer(raw, np.uint8, count * rows * cols, 16).reshape(count, rows * cols)


def sync(dev):
    if str(dev).startswith("cuda"):
        torch.cuda.synchronize()


def save_checkpoint(G, D, steps, dataset, seed, out, ema=None):
    """shadergan's checkpoint format: the networks' state_dicts under
    `generator.`/`discriminator.` (fp32; num_batches_tracked int64), the
    layer-list model in the metadata, no optimizer state, no recipe."""
    from safetensors.torch import save_file

    def plain(v):
        v = v.detach().cpu()
        return (v if v.dtype == torch.int64 else v.float()).contiguous()

    tensors = {f"generator.{k}": plain(v) for k, v in G.state_dict().items()}
    tensors.update({f"discriminator.{k}": plain(v) for k, v in D.state_dict().items()})
    if ema is not None:
        tensors.update({f"generator_ema.{k}": plain(v) for k, v in ema.state_dict().items()})
    model = {"z_dim": Z_DIM, "data_shape": DATA_SHAPE, "generator": GENERATOR, "discriminator": DISCRIMINATOR}
    save_file(tensors, out, metadata={"format": "shadergan-checkpoint-1",
                                      "model": json.dumps(model, separators=(",", ":")),
                                      "step": str(steps), "dataset": dataset, "seed": str(seed)})


def train(a):
    """The quality mode: exactly `steps` steps of the same loop on real data
    (PyTorch's default init, seeded), then the checkpoint. With --graphs the
    first few steps run eagerly on a side stream (as graph capture asks) and
    count towards `steps`; the rest replay one captured step."""
    dev = a.device
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(a.seed)
    x = torch.from_numpy(read_images(f"{a.data}/train-images-idx3-ubyte.gz").copy()).to(dev)
    n = x.shape[0]
    steps = math.ceil(a.epochs * n / a.batch) if a.epochs else a.steps
    G, D = generator().to(dev), discriminator().to(dev)
    opt_g, opt_d = adam(G, a.lr, a.beta1, a.graphs), adam(D, a.lr, a.beta1, a.graphs)
    ema = copy.deepcopy(G) if a.g_ema > 0 else None
    step = make_step(G, D, opt_g, opt_d, x, a.batch, ema, a.g_ema)
    mode = "cuda-graphs" if a.graphs else "eager"
    print(f"torch {torch.__version__} DCGAN on {a.dataset} ({n} images) on {dev}, {mode}: "
          f"batch {a.batch}, {steps} steps ({steps * a.batch / n:.2f} epochs), "
          f"Adam({a.lr:g}, {a.beta1:g}, 0.999), seed {a.seed}"
          + (f", G's average beta {a.g_ema:g}" if ema is not None else ""), flush=True)
    marks = {math.ceil(steps * k / 10) for k in range(1, 11)}
    sync(dev)
    start = time.time()
    done, losses = 0, None

    def progress():
        d_loss, g_loss = losses
        print(f"step {done}/{steps} ({100 * done / steps:.0f}%): D loss {d_loss.item():.3f}, "
              f"G loss {g_loss.item():.3f}, {time.time() - start:.1f} s", flush=True)

    if a.graphs:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            while done < min(3, steps):
                losses = step()
                done += 1
        torch.cuda.current_stream().wait_stream(side)
        if done < steps:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):  # records the step, runs nothing
                static = step()
            run_one = lambda: (graph.replay(), static)[1]
    else:
        run_one = step
    while done < steps:
        losses = run_one()
        done += 1
        if done in marks:
            progress()
    sync(dev)
    seconds = time.time() - start
    if a.out:
        save_checkpoint(G, D, done, a.dataset, a.seed, a.out, ema)
    rate = done / seconds
    if a.json:
        print(json.dumps({"model": "dcgan", "dataset": a.dataset, "batch": a.batch, "mode": mode,
                          "steps": done, "seconds": seconds, "steps_per_s": rate, "out": a.out}))
    else:
        d_loss, g_loss = losses
        print(f"torch {torch.__version__} DCGAN on {a.dataset}, batch {a.batch}, {mode}: {done} steps in "
              f"{seconds:.1f} s ({rate:.1f} steps/s); D loss {d_loss.item():.3f}, G loss {g_loss.item():.3f}"
              + (f"; wrote {a.out}" if a.out else ""), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--graphs", action="store_true", help="replay the whole step as a CUDA graph")
    p.add_argument("--sweep", action="store_true", help="eager and CUDA graphs at batch 64 and 256")
    p.add_argument("--json", action="store_true")
    q = p.add_argument_group("quality mode (--data)")
    q.add_argument("--data", help="folder with train-images-idx3-ubyte.gz: train on it (random data if absent)")
    q.add_argument("--dataset", default="mnist", help="the dataset's name in the checkpoint's metadata")
    q.add_argument("--epochs", type=float, help="passes over the data (sets steps = ceil(E*N/batch))")
    q.add_argument("--seed", type=int, default=0, help="torch.manual_seed")
    q.add_argument("--lr", type=float, default=1e-4)
    q.add_argument("--beta1", type=float, default=0.5)
    q.add_argument("--g-ema", type=float, default=0.0,
                   help="beta of G's moving average (0: none), saved as generator_ema.*")
    q.add_argument("--out", help="checkpoint to write (shadergan's format)")
    q.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args()
    if a.data:
        if a.sweep:
            p.error("--sweep is a speed mode; drop --data")
        if a.graphs and not a.device.startswith("cuda"):
            p.error("--graphs needs a CUDA --device")
        train(a)
        return
    if a.out or a.epochs:
        p.error("--out and --epochs need --data")
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
