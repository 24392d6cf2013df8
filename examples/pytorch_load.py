"""Load a shadergan checkpoint into PyTorch nn.Sequential models and sample.

    python examples/pytorch_load.py runs/<run>/checkpoint.safetensors [out.png]

The checkpoint's tensors are named like an nn.Sequential's state_dict
(`generator.0.weight`, `generator.2.weight`, ...: Linear layers at even
indices, activations between them); the architecture is in the metadata.
"""
import json
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file


def build(sizes, hidden_act, output_act):
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


def main():
    path = sys.argv[1]
    with safe_open(path, "pt") as f:
        model = json.loads(f.metadata()["model"])
    sd = load_file(path)
    sizes = [model["z_dim"], *model["hidden"], model["data_dim"]]
    G = build(sizes, model["hidden_act"], model["output_act"])
    G.load_state_dict({k.removeprefix("generator."): v for k, v in sd.items() if k.startswith("generator.")})
    D = build([model["data_dim"], *model["hidden"], 1], model["hidden_act"], "identity")
    D.load_state_dict({k.removeprefix("discriminator."): v for k, v in sd.items() if k.startswith("discriminator.")})
    with torch.no_grad():
        x = G(torch.randn(64, model["z_dim"]))
        p = torch.sigmoid(D(x)).mean().item()
    print(f"G: {G}\nsamples {tuple(x.shape)} in [{x.min():.3f}, {x.max():.3f}], mean D(G(z)) = {p:.3f}")
    if len(sys.argv) > 2 and model["data_dim"] == 784:
        import torchvision
        torchvision.utils.save_image((x.view(64, 1, 28, 28) + 1) / 2, sys.argv[2], nrow=8)
        print(f"wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
