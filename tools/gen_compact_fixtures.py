"""Writes tests/fixtures/compact/*: a small PyTorch model's state_dict in F32, F16, BF16 and F64,
and wrapped by nn.DataParallel (`module.`) and torch.compile (`_orig_mod.`), for tests/dtypes.rs.

The model is `network! { input: [4], fc1: dense(8), relu, fc2: dense(3), output: [3] }`.
`io.safetensors` holds inputs `x` [5, 4] and, for each stored dtype, the outputs `y_<dtype>` [5, 3]
of the model with the weights as stored (converted to float64 and computed in float64).

Run once with tools/.venv/bin/python; the tests read the committed files and need no Python.
"""
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "compact"


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(21)
    net = Net()
    x = torch.randn(5, 4)
    io = {"x": x.contiguous()}
    for name, dtype in [("f32", torch.float32), ("f16", torch.float16), ("bf16", torch.bfloat16), ("f64", torch.float64)]:
        state = {k: v.to(dtype).contiguous() for k, v in net.state_dict().items()}
        save_file(state, OUT / f"mlp_{name}.safetensors", metadata={"format": "pt"})
        wide = Net().double()
        wide.load_state_dict({k: v.double() for k, v in state.items()})
        with torch.no_grad():
            io[f"y_{name}"] = wide(x.double()).contiguous()
    # The names wrappers give: DataParallel's `module.`, torch.compile's `_orig_mod.`.
    parallel = nn.DataParallel(net)
    save_file({k: v.contiguous() for k, v in parallel.state_dict().items()}, OUT / "mlp_module.safetensors")
    compiled = torch.compile(net)
    save_file({k: v.contiguous() for k, v in compiled.state_dict().items()}, OUT / "mlp_orig_mod.safetensors")
    save_file(io, OUT / "io.safetensors")
    for p in sorted(OUT.iterdir()):
        print(p.name, p.stat().st_size)


if __name__ == "__main__":
    main()
