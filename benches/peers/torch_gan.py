"""The PyTorch peer: trains the same MLP GAN as `shadergan train`, step for
step, and writes a checkpoint in shadergan's format, so `shadergan eval`
scores both with one protocol. It is also the speed peer of `shadergan bench`.

Same shapes (z 100 -> 128 -> 128 -> 784 tanh; 784 -> 128 -> 128 -> 1 logit,
ReLU, or --hidden), same init (nn.Linear's default, as shadergan's),
Adam(2e-4, 0.5, 0.999), batch 64 drawn uniformly with replacement, images
scaled to [-1, 1], D loss = BCE(D(real), 1) + BCE(D(fake), 0), non-saturating
G loss on fresh noise, one D update per G update. Data stays on the device;
fp32 with TF32 off (--tf32 turns it on: the tensor-core peer).

Modes:
- eager (default): one Python-driven step after another;
- --graphs: the whole D+G step captured once as a CUDA graph and replayed;
- --compile: both networks through torch.compile (mode max-autotune-no-cudagraphs,
  static shapes) and Adam fused, then the whole step captured as one CUDA graph
  as --graphs does: the strongest setup a PyTorch user would pick for this
  step (if compiling or capturing fails it says why and falls back to --graphs).
  max-autotune benchmarks every matmul shape: about 270 s per batch size on an
  H200 (2026-12-01, torch 2.11.0+cu130); --compile-mode default is quicker;
- --device cpu --threads N: PyTorch on the CPU (the CPU backend's peer).

    python benches/peers/torch_gan.py --data ../shared/data/mnist --epochs 30 --out torch.safetensors
    python benches/peers/torch_gan.py --steps 2000 --graphs            # speed only, random data
    python benches/peers/torch_gan.py --steps 2000 --compile           # compiled, then graphed
    python benches/peers/torch_gan.py --sweep                          # all three modes at batch 64, 256, 1024
    python benches/peers/torch_gan.py --sgemm 4096                    # the card's fp32 SGEMM TFLOP/s
"""
import argparse
import gzip
import json
import struct
import sys
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


def sgemm_tflops(n, dev, reps=20, dtype=torch.float32):
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(dev)
    start = time.time()
    for _ in range(reps):
        a @ b
    sync(dev)
    return 2 * n**3 * reps / (time.time() - start) / 1e12


MODES = ("eager", "cuda-graphs", "compile+cuda-graphs")


def nets(hidden, dim, dev, mode):
    """G, D and their Adam optimizers; graph capture needs capturable Adam,
    and the compiled mode also takes the fused (single-kernel) Adam."""
    G = mlp([100, *hidden, dim], torch.nn.Tanh()).to(dev)
    D = mlp([dim, *hidden, 1], None).to(dev)  # the logit, no final activation module
    graphed = mode != "eager"
    fused = {"fused": True} if mode == "compile+cuda-graphs" else {}
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999), capturable=graphed, **fused)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999), capturable=graphed, **fused)
    return G, D, opt_g, opt_d


def make_step(G, D, opt_g, opt_d, x, batch, dev, g_call=None, d_call=None):
    """One D update then one G update; `g_call`/`d_call` are the networks as
    called (compiled wrappers), `G`/`D` own the parameters. Everything the step
    reads lives on the device, allocated before any capture: the data `x`, the
    targets, the parameters, so a captured graph replays on static buffers."""
    n = x.shape[0]
    g_call, d_call = g_call or G, d_call or D
    bce = torch.nn.BCEWithLogitsLoss()
    ones = torch.ones(batch, 1, device=dev)
    zeros = torch.zeros(batch, 1, device=dev)
    g_params, d_params = list(G.parameters()), list(D.parameters())

    def step():
        real = x[torch.randint(0, n, (batch,), device=dev)]
        fake = g_call(torch.randn(batch, 100, device=dev))
        d_loss = bce(d_call(real), ones) + bce(d_call(fake.detach()), zeros)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward(inputs=d_params)
        opt_d.step()
        g_loss = bce(d_call(g_call(torch.randn(batch, 100, device=dev))), ones)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward(inputs=g_params)
        opt_g.step()
        return d_loss, g_loss

    return step


def capture(step, warmup):
    """Warms `step` up on a side stream (as torch.cuda.graph asks), then
    captures one whole step: (graph, its loss tensors, steps run untimed)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(max(warmup, 3)):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        losses = step()
    torch.cuda.synchronize()
    return graph, losses, max(warmup, 3) + 1  # warm-up steps plus the captured one


def compiled_graph(hidden, x, batch, dev, warmup, compile_mode):
    """The compile+cuda-graphs mode: torch.compile without its own CUDA graphs
    (we capture the whole step ourselves), static shapes, compiled first on
    the default stream so no compilation or autotuning happens in capture."""
    import torch._dynamo

    torch._dynamo.reset()  # a fresh cache per configuration: no recompile limit, no dynamic shapes
    G, D, opt_g, opt_d = nets(hidden, x.shape[1], dev, "compile+cuda-graphs")
    opts = {"mode": compile_mode, "dynamic": False}
    step = make_step(G, D, opt_g, opt_d, x, batch, dev, torch.compile(G, **opts), torch.compile(D, **opts))
    start = time.time()
    for _ in range(2):  # both of D's input kinds (with and without grad) compile here
        step()
    torch.cuda.synchronize()
    print(f"note: batch {batch} compiled ({compile_mode}) in {time.time() - start:.0f} s", file=sys.stderr)
    graph, losses, done = capture(step, warmup)
    return G, graph, losses, done + 2


def build(mode, hidden, x, batch, dev, warmup, compile_mode="max-autotune-no-cudagraphs"):
    """(G, run, losses, untimed steps, mode as run): `run()` does one step;
    `losses()` gives the last step's (D, G) loss tensors."""
    if mode != "eager":
        assert dev == "cuda", f"--{'compile' if 'compile' in mode else 'graphs'} needs CUDA"
    if mode == "compile+cuda-graphs":
        try:
            G, graph, losses, done = compiled_graph(hidden, x, batch, dev, warmup, compile_mode)
            return G, graph.replay, lambda: losses, done, mode
        except Exception as e:  # noqa: BLE001 - any compiler or capture failure falls back
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            print(f"note: torch.compile + CUDA graph capture failed ({type(e).__name__}: {first}); "
                  "falling back to plain CUDA graphs", file=sys.stderr)
            torch.cuda.synchronize()
            mode = "cuda-graphs (compile failed)"
    G, D, opt_g, opt_d = nets(hidden, x.shape[1], dev, mode)
    step = make_step(G, D, opt_g, opt_d, x, batch, dev)
    if mode != "eager":
        graph, losses, done = capture(step, warmup)
        return G, graph.replay, lambda: losses, done, mode
    for _ in range(warmup):
        step()
    holder = {}

    def run():
        holder["l"] = step()

    return G, run, lambda: holder["l"], warmup, mode


def timed(run, steps, dev):
    sync(dev)
    start = time.time()
    for _ in range(steps):
        run()
    sync(dev)
    return time.time() - start


def report(a, dev, mode, batch, hidden, steps, seconds, losses, done, out=None):
    rate = steps / seconds
    if a.json:
        print(json.dumps({"torch": torch.__version__, "device": dev, "mode": mode, "batch": batch,
                          "hidden": hidden, "steps": steps, "seconds": seconds, "steps_per_s": rate,
                          "untimed_steps": done}), flush=True)
    else:
        d_loss, g_loss = losses
        label = (f"{mode}, batch {batch}" if a.sweep else mode) + (", TF32" if a.tf32 else "")
        print(f"torch {torch.__version__} on {dev} ({label}): {steps} steps in {seconds:.1f} s "
              f"({rate:.1f} steps/s); D loss {d_loss.item():.3f}, G loss {g_loss.item():.3f}"
              + (f"; wrote {out}" if out else ""), flush=True)


def save_checkpoint(G, D, hidden, dim, steps, seed, out):
    from safetensors.torch import save_file

    tensors = {f"generator.{k}": v.detach().cpu().contiguous() for k, v in G.state_dict().items()}
    tensors.update({f"discriminator.{k}": v.detach().cpu().contiguous() for k, v in D.state_dict().items()})
    model = {"z_dim": 100, "data_dim": dim, "hidden": hidden, "hidden_act": "relu",
             "output_act": "tanh", "pack": 1}
    save_file(tensors, out, metadata={"format": "shadergan-checkpoint-1", "model": json.dumps(model),
                                      "step": str(steps), "dataset": "mnist", "seed": str(seed)})


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
    p.add_argument("--compile", action="store_true",
                   help="torch.compile both networks, fused Adam, then replay the step as a CUDA graph")
    p.add_argument("--compile-mode", default="max-autotune-no-cudagraphs",
                   help="torch.compile's mode for --compile (max-autotune takes minutes per batch size; "
                        "'default' compiles in seconds)")
    p.add_argument("--sweep", action="store_true",
                   help="speed of every mode (eager, graphs, compile+graphs) at each --batches, a line each")
    p.add_argument("--batches", default="64,256,1024", help="the batch sizes of --sweep")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps first (speed runs)")
    p.add_argument("--sgemm", type=int, metavar="N", help="only measure N^3 fp32 SGEMM")
    p.add_argument("--tf32", action="store_true",
                   help="let cuBLAS and cuDNN use TF32 tensor cores (default: off, true fp32); "
                        "with --sgemm, also time an f16 GEMM (tensor cores, f32 accumulate)")
    p.add_argument("--json", action="store_true", help="print one JSON line (per configuration)")
    p.add_argument("--out", help="checkpoint to write (shadergan's format)")
    a = p.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = a.device
    if a.sgemm:
        t = sgemm_tflops(a.sgemm, dev)
        kind = "TF32" if a.tf32 else "fp32"
        print(json.dumps({"sgemm_n": a.sgemm, "tflops": t, "device": dev, "tf32": a.tf32}) if a.json
              else f"torch {torch.__version__} on {dev}: {kind} SGEMM {a.sgemm}^3 at {t:.1f} TFLOP/s")
        if a.tf32 and dev == "cuda":
            h = sgemm_tflops(a.sgemm, dev, dtype=torch.float16)
            print(json.dumps({"hgemm_n": a.sgemm, "tflops": h, "device": dev}) if a.json
                  else f"torch {torch.__version__} on {dev}: f16 GEMM {a.sgemm}^3 at {h:.1f} TFLOP/s")
        return
    if a.out and (a.graphs or a.compile or a.sweep):
        p.error("--graphs, --compile and --sweep are speed modes; --out trains eagerly")
    torch.manual_seed(a.seed)
    if a.data:
        x = torch.tensor(read_images(f"{a.data}/train-images-idx3-ubyte.gz"), device=dev).float() / 127.5 - 1.0
    else:
        x = torch.rand(60000, 784, device=dev) * 2 - 1
    n, dim = x.shape
    steps = int(np.ceil(a.epochs * n / a.batch)) if a.epochs else a.steps
    hidden = [int(h) for h in a.hidden.split(",")]
    if a.sweep:
        modes = MODES if dev == "cuda" else MODES[:1]
        for batch in [int(b) for b in a.batches.split(",")]:
            for mode in modes:
                torch.manual_seed(a.seed)
                _, run, losses, done, ran_as = build(mode, hidden, x, batch, dev, a.warmup, a.compile_mode)
                seconds = timed(run, steps, dev)
                report(a, dev, ran_as, batch, hidden, steps, seconds, losses(), done)
                del run, losses
                if dev == "cuda":
                    torch.cuda.empty_cache()
        return
    mode = "compile+cuda-graphs" if a.compile else "cuda-graphs" if a.graphs else "eager"
    # Speed runs (no checkpoint) warm up first; quality runs train exactly `steps`.
    warmup = 0 if a.out else a.warmup
    if a.out:
        G, D, opt_g, opt_d = nets(hidden, dim, dev, mode)
        step = make_step(G, D, opt_g, opt_d, x, a.batch, dev)
        holder = {}
        run, losses, done = (lambda: holder.__setitem__("l", step())), (lambda: holder["l"]), 0
    else:
        G, run, losses, done, mode = build(mode, hidden, x, a.batch, dev, warmup, a.compile_mode)
    seconds = timed(run, steps, dev)
    if a.out:
        save_checkpoint(G, D, hidden, dim, steps, a.seed, a.out)
    report(a, dev, mode, a.batch, hidden, steps, seconds, losses(), done, a.out)


if __name__ == "__main__":
    main()
