"""The PyTorch peer: trains the same MLP GAN as `shadergan train`, step for
step, and writes a checkpoint in shadergan's format, so `shadergan eval`
scores both with one protocol. It is also the speed peer of `shadergan bench`.

Same shapes (z 100 -> 128 -> 128 -> 784 tanh; 784 -> 128 -> 128 -> 1 logit,
ReLU, or --hidden), same init (nn.Linear's default, as shadergan's),
Adam(2e-4, 0.5, 0.999), batch 64 drawn uniformly with replacement, images
scaled to [-1, 1], D loss = BCE(D(real), 1) + BCE(D(fake), 0), non-saturating
G loss on fresh noise, one D update per G update. Data stays on the device;
fp32 with TF32 off.

Modes:
- eager (default): one Python-driven step after another;
- --graphs: the whole D+G step captured once as a CUDA graph and replayed;
- --device cpu --threads N: PyTorch on the CPU (the CPU backend's peer).

    python benches/peers/torch_gan.py --data ../shared/data/mnist --epochs 30 --out torch.safetensors
    python benches/peers/torch_gan.py --steps 2000 --graphs            # speed only, random data
    python benches/peers/torch_gan.py --sgemm 4096                    # the card's fp32 SGEMM TFLOP/s
"""
import argparse
import gzip
import json
import struct
import time

import numpy as np
import torch


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
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
        elif out_act is not None:
            layers.append(out_act)
    return torch.nn.Sequential(*layers)


def sync(dev):
    if dev == "cuda":
        torch.cuda.synchronize()


def sgemm_tflops(n, dev, reps=20):
    a = torch.randn(n, n, device=dev)
    b = torch.randn(n, n, device=dev)
    for _ in range(3):
        a @ b
    sync(dev)
    start = time.time()
    for _ in range(reps):
        a @ b
    sync(dev)
    return 2 * n**3 * reps / (time.time() - start) / 1e12


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", help="folder with train-images-idx3-ubyte.gz; random data if absent")
    p.add_argument("--epochs", type=float, help="passes over the data (sets --steps)")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--hidden", default="128,128")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, help="torch.set_num_threads on the CPU")
    p.add_argument("--graphs", action="store_true", help="replay the step as a CUDA graph")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps first (speed runs)")
    p.add_argument("--sgemm", type=int, metavar="N", help="only measure N^3 fp32 SGEMM")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.add_argument("--out", help="checkpoint to write (shadergan's format)")
    a = p.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = a.device
    if a.sgemm:
        t = sgemm_tflops(a.sgemm, dev)
        print(json.dumps({"sgemm_n": a.sgemm, "tflops": t, "device": dev}) if a.json
              else f"torch {torch.__version__} on {dev}: fp32 SGEMM {a.sgemm}^3 at {t:.1f} TFLOP/s")
        return
    torch.manual_seed(a.seed)
    if a.data:
        x = torch.tensor(read_images(f"{a.data}/train-images-idx3-ubyte.gz"), device=dev).float() / 127.5 - 1.0
    else:
        x = torch.rand(60000, 784, device=dev) * 2 - 1
    n, dim = x.shape
    steps = int(np.ceil(a.epochs * n / a.batch)) if a.epochs else a.steps
    hidden = [int(h) for h in a.hidden.split(",")]
    G = mlp([100, *hidden, dim], torch.nn.Tanh()).to(dev)
    D = mlp([dim, *hidden, 1], None).to(dev)  # the logit, no final activation module
    capturable = a.graphs
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999), capturable=capturable)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999), capturable=capturable)
    bce = torch.nn.BCEWithLogitsLoss()
    ones = torch.ones(a.batch, 1, device=dev)
    zeros = torch.zeros(a.batch, 1, device=dev)
    g_params, d_params = list(G.parameters()), list(D.parameters())

    def step():
        real = x[torch.randint(0, n, (a.batch,), device=dev)]
        fake = G(torch.randn(a.batch, 100, device=dev))
        d_loss = bce(D(real), ones) + bce(D(fake.detach()), zeros)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward(inputs=d_params)
        opt_d.step()
        g_loss = bce(D(G(torch.randn(a.batch, 100, device=dev))), ones)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward(inputs=g_params)
        opt_g.step()
        return d_loss, g_loss

    # Speed runs (no checkpoint) warm up first; quality runs train exactly `steps`.
    warmup = 0 if a.out else a.warmup
    if a.graphs:
        assert dev == "cuda", "--graphs needs CUDA"
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(max(warmup, 3)):
                step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            d_loss, g_loss = step()
        run = graph.replay
        done = max(warmup, 3) + 1  # warm-up steps plus the captured one (not replayed yet)
        assert a.out is None, "--graphs is a speed mode; train checkpoints eagerly"
        remaining = steps
    else:
        for _ in range(warmup):
            step()
        holder = {}

        def run():
            holder["l"] = step()

        remaining = steps
        done = 0
    sync(dev)
    start = time.time()
    for _ in range(remaining):
        run()
    sync(dev)
    seconds = time.time() - start
    if not a.graphs:
        d_loss, g_loss = holder["l"]
    rate = remaining / seconds
    mode = "cuda-graphs" if a.graphs else "eager"
    if a.out:
        from safetensors.torch import save_file

        tensors = {f"generator.{k}": v.detach().cpu().contiguous() for k, v in G.state_dict().items()}
        tensors.update({f"discriminator.{k}": v.detach().cpu().contiguous() for k, v in D.state_dict().items()})
        model = {"z_dim": 100, "data_dim": dim, "hidden": hidden, "hidden_act": "relu",
                 "output_act": "tanh", "pack": 1}
        save_file(tensors, a.out, metadata={"format": "shadergan-checkpoint-1", "model": json.dumps(model),
                                            "step": str(steps), "dataset": "mnist", "seed": str(a.seed)})
    if a.json:
        print(json.dumps({"torch": torch.__version__, "device": dev, "mode": mode, "batch": a.batch,
                          "hidden": hidden, "steps": remaining, "seconds": seconds, "steps_per_s": rate,
                          "untimed_steps": done}))
    else:
        print(f"torch {torch.__version__} on {dev} ({mode}): {remaining} steps in {seconds:.1f} s "
              f"({rate:.1f} steps/s); D loss {d_loss.item():.3f}, G loss {g_loss.item():.3f}"
              + (f"; wrote {a.out}" if a.out else ""))


if __name__ == "__main__":
    main()
