"""Load a shadergan checkpoint into PyTorch nn.Sequential models and sample.

    python examples/pytorch_load.py runs/<run>/checkpoint.safetensors [out.png] [--bn-stats recomputed]

The checkpoint's tensors are named like an nn.Sequential's state_dict
(`generator.0.weight`, `discriminator.3.bias`, ...); the architecture is the
JSON in the metadata's `model`, of one of two kinds:

- an MLP pair (`z_dim`, `hidden`, `data_dim`, `hidden_act`, `output_act`):
  Linear layers at even indices, activations between them;
- layer lists (`z_dim`, `data_shape`, `generator`, `discriminator`), as the
  DCGAN writes them: each entry one nn.Sequential module named by PyTorch's
  class (`{"layer": "ConvTranspose2d", "out_channels": 128, "kernel": 5, ...}`),
  G taking `[z_dim]` and D taking `data_shape`; `build_layers` below rebuilds
  them (BatchNorm running statistics included), and both networks are put in
  eval mode before sampling.

Either way the state_dicts load strictly, 64 samples are drawn from G's
moving average when the checkpoint has one (`generator_ema.*`, as
`shadergan sample` does) and from G otherwise, and with an output path
28x28 samples are saved as an 8x8 grid (needs torchvision).

`--bn-stats recomputed` does what `shadergan sample --bn-stats recomputed`
does: before sampling, one training-mode forward of 2,048 noise rows with
BatchNorm's momentum at 1 replaces the running statistics by that batch's
mean and unbiased variance (torch's noise, not shadergan's Philox draws, so
the statistics agree to sampling noise, not to the bit).
"""
import argparse
import json
import math

import torch
from safetensors import safe_open
from safetensors.torch import load_file


def build(sizes, hidden_act, output_act):
    """An MLP checkpoint's network."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        layers.append(torch.nn.Linear(n_in, n_out))
        last = i == len(sizes) - 2
        kind = output_act if last else hidden_act
        if kind == "relu":
            layers.append(torch.nn.ReLU())
        elif isinstance(kind, dict) and "leaky_relu" in kind:
            layers.append(torch.nn.LeakyReLU(kind["leaky_relu"]))
        elif kind == "tanh":
            layers.append(torch.nn.Tanh())
        elif kind == "sigmoid":
            layers.append(torch.nn.Sigmoid())
        elif not last:
            layers.append(torch.nn.Identity())
    return torch.nn.Sequential(*layers)


class Reshape(torch.nn.Module):
    """A Reshape whose input is not flat (nn.Unflatten covers the flat case)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self):
        return f"shape={self.shape}"


def build_layers(layers, input_shape):
    """A layer-list checkpoint's network: nn.Sequential for one sample of
    `input_shape` (no batch axis), the shapes chained as shadergan chains
    them. Omitted fields take shadergan's defaults (bias true, stride 1,
    padding 0, output_padding 0)."""
    nn = torch.nn
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


def part(sd, prefix):
    return {k.removeprefix(prefix): v for k, v in sd.items() if k.startswith(prefix)}


CALIBRATION_ROWS = 2048


def recompute_bn_stats(G, z_dim):
    """BatchNorm statistics of G's current weights over CALIBRATION_ROWS noise rows."""
    norms = [m for m in G.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    for m in norms:
        m.momentum = 1.0
    G.train()
    with torch.no_grad():
        G(torch.randn(CALIBRATION_ROWS, z_dim))
    G.eval()


def main():
    ap = argparse.ArgumentParser(description="load a shadergan checkpoint into PyTorch and sample")
    ap.add_argument("checkpoint")
    ap.add_argument("out", nargs="?", help="an 8x8 PNG grid of 28x28 samples (needs torchvision)")
    ap.add_argument("--bn-stats", choices=["running", "recomputed"], default="running",
                    help="G's BatchNorm statistics: the checkpoint's, or recomputed for its weights")
    a = ap.parse_args()
    path = a.checkpoint
    with safe_open(path, "pt") as f:
        model = json.loads(f.metadata()["model"])
    sd = load_file(path)
    if "generator" in model:
        data_shape = list(model["data_shape"])
        G = build_layers(model["generator"], [model["z_dim"]])
        D = build_layers(model["discriminator"], data_shape)
    else:
        data_shape = [model["data_dim"]]
        G = build([model["z_dim"], *model["hidden"], model["data_dim"]], model["hidden_act"], model["output_act"])
        D = build([model["data_dim"], *model["hidden"], 1], model["hidden_act"], "identity")
    which = "generator_ema." if any(k.startswith("generator_ema.") for k in sd) else "generator."
    G.load_state_dict(part(sd, which), strict=True)
    D.load_state_dict(part(sd, "discriminator."), strict=True)
    G.eval()
    D.eval()
    torch.manual_seed(0)
    z = torch.randn(64, model["z_dim"])  # drawn first: the same noise either way
    if a.bn_stats == "recomputed":
        recompute_bn_stats(G, model["z_dim"])
    with torch.no_grad():
        x = G(z)
        p = torch.sigmoid(D(x)).mean().item()
    print(f"G ({which.rstrip('.')}, BatchNorm on {a.bn_stats} statistics): {G}\n"
          f"samples {tuple(x.shape)} in [{x.min():.3f}, {x.max():.3f}], mean D(G(z)) = {p:.3f}")
    if a.out and math.prod(data_shape) == 784:
        import torchvision
        torchvision.utils.save_image((x.view(64, 1, 28, 28) + 1) / 2, a.out, nrow=8)
        print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
