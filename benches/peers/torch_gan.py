"""The PyTorch peer: trains the same MLP GAN as `shadergan train`, step for
step, and writes a checkpoint in shadergan's format, so `shadergan eval`
scores both with one protocol.

Same shapes (z 100 -> 128 -> 128 -> 784 tanh; 784 -> 128 -> 128 -> 1 logit,
ReLU), same init (nn.Linear's default, as shadergan's), Adam(2e-4, 0.5,
0.999), batch 64 drawn uniformly with replacement, images scaled to [-1, 1],
D loss = BCE(D(real), 1) + BCE(D(fake), 0), non-saturating G loss on fresh
noise, one D update per G update. Data stays on the GPU; fp32, TF32 off.

    python benches/peers/torch_gan.py --data ../shared/data/mnist --epochs 30 --out torch.safetensors
"""
import argparse
import gzip
import json
import struct
import time

import numpy as np
import torch
from safetensors.torch import save_file


def read_images(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    assert magic == 2051, f"{path}: not an IDX image file"
    return np.frombuffer(raw, np.uint8, count * rows * cols, 16).reshape(count, rows * cols)


def mlp(sizes, out_act):
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        layers.append(torch.nn.ReLU() if i < len(sizes) - 2 else out_act)
    return torch.nn.Sequential(*layers)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--epochs", type=float, default=30)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(a.seed)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    x = torch.tensor(read_images(f"{a.data}/train-images-idx3-ubyte.gz"), device=dev).float() / 127.5 - 1.0
    n = x.shape[0]
    steps = int(np.ceil(a.epochs * n / a.batch))
    G = mlp([100, 128, 128, 784], torch.nn.Tanh()).to(dev)
    D = mlp([784, 128, 128, 1], torch.nn.Identity()).to(dev)
    D = torch.nn.Sequential(*list(D)[:-1])  # the logit, no final activation module
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = torch.nn.BCEWithLogitsLoss()
    ones = torch.ones(a.batch, 1, device=dev)
    zeros = torch.zeros(a.batch, 1, device=dev)
    start = time.time()
    for step in range(steps):
        real = x[torch.randint(0, n, (a.batch,), device=dev)]
        fake = G(torch.randn(a.batch, 100, device=dev))
        d_loss = bce(D(real), ones) + bce(D(fake.detach()), zeros)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = bce(D(G(torch.randn(a.batch, 100, device=dev))), ones)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
    if dev == "cuda":
        torch.cuda.synchronize()
    seconds = time.time() - start
    tensors = {f"generator.{k}": v.detach().cpu().contiguous() for k, v in G.state_dict().items()}
    tensors.update({f"discriminator.{k}": v.detach().cpu().contiguous() for k, v in D.state_dict().items()})
    model = {"z_dim": 100, "data_dim": 784, "hidden": [128, 128], "hidden_act": "relu",
             "output_act": "tanh", "pack": 1}
    save_file(tensors, a.out, metadata={"format": "shadergan-checkpoint-1", "model": json.dumps(model),
                                        "step": str(steps), "dataset": "mnist", "seed": str(a.seed)})
    print(f"torch {torch.__version__} on {dev}: {steps} steps in {seconds:.1f} s ({steps / seconds:.1f} steps/s); "
          f"D loss {d_loss.item():.3f}, G loss {g_loss.item():.3f}; wrote {a.out}")


if __name__ == "__main__":
    main()
