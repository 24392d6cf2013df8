#!/usr/bin/env python3
"""The PyTorch peer of `shadergan bench --only conv`: cuDNN's fp32 (TF32 off)
Conv2d forward, input gradient and weight gradient at the TensorFlow DCGAN
tutorial's layers, each as the convolution shadergan's ops describe (a
ConvTranspose2d layer is the input gradient of the convolution named with
it). Prints GFLOP/s (2 x multiply-adds per launch) from CUDA events, one
line per case, the names matching `shadergan bench`'s.

    python3 benches/peers/torch_conv.py [--batch 64] [--reps 200] [--json]
"""
import argparse
import json

import torch
import torch.nn.functional as F
from torch.nn.grad import conv2d_input, conv2d_weight


def layers(batch):
    """(name, input shape [B, C, H, W], out channels, stride, pad, output size) as convolutions."""
    return [
        ("D conv 1→64, 28→14", (batch, 1, 28, 28), 64, 2),
        ("D conv 64→128, 14→7", (batch, 64, 14, 14), 128, 2),
        # ConvTranspose2d(256→128, 5, stride 1, pad 2) on 7×7 = input gradient of Conv 128→256 on 7×7.
        ("G convT 256→128, 7→7", (batch, 128, 7, 7), 256, 1),
        # ConvTranspose2d(128→64, 5, stride 2, pad 2, output_padding 1): 7→14.
        ("G convT 128→64, 7→14", (batch, 64, 14, 14), 128, 2),
        ("G convT 64→1, 14→28", (batch, 1, 28, 28), 64, 2),
    ]


def time_ms(fn, reps):
    for _ in range(10):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / reps


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--reps", type=int, default=200)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    dev = "cuda"
    for name, shape, out_ch, stride in layers(a.batch):
        x = torch.randn(shape, device=dev)
        w = torch.randn(out_ch, shape[1], 5, 5, device=dev)
        y = F.conv2d(x, w, stride=stride, padding=2)
        dy = torch.randn_like(y)
        macs = y.numel() * shape[1] * 25
        cases = {
            "forward": lambda: F.conv2d(x, w, stride=stride, padding=2),
            "input grad": lambda: conv2d_input(x.shape, w, dy, stride=stride, padding=2),
            "weight grad": lambda: conv2d_weight(x, w.shape, dy, stride=stride, padding=2),
        }
        for what, fn in cases.items():
            ms = time_ms(fn, a.reps)
            label = f"conv {name}, batch {a.batch}: {what}"
            gflops = 2 * macs / (ms * 1e-3) / 1e9
            if a.json:
                print(json.dumps({"case": label, "ms": ms, "gflops": gflops}))
            else:
                print(f"{label:<52} {ms * 1e3:9.1f} µs {gflops:10.1f} GFLOP/s")
    print(f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, fp32, TF32 off, {torch.cuda.get_device_name()}")


if __name__ == "__main__":
    main()
