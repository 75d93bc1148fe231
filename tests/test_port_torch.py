"""A PyTorch CNN and transformer block ported to MLX through their state_dict (issue 11 item 4).

Needs torch and mlx in one environment: the torch nox stack installs the `port` extra.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.torch

torch = pytest.importorskip("torch", reason="torch is not installed")
mx = pytest.importorskip("mlx.core", reason="mlx is not installed in the torch environment")
import mlx.nn as mnn  # noqa: E402
import numpy as np  # noqa: E402

from genai_common.workflows import port  # noqa: E402

tnn = torch.nn


class TorchCNN(tnn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = tnn.Conv2d(3, 8, 5, padding=2)
        self.bn = tnn.BatchNorm2d(8)
        self.up = tnn.ConvTranspose2d(8, 4, 2, stride=2)
        self.fc = tnn.Linear(4, 5)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x)))
        u = self.up(h)
        return {"conv": h, "up": u, "logits": self.fc(u.mean(dim=(2, 3)))}


class MlxCNN(mnn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = mnn.Conv2d(3, 8, 5, padding=2)
        self.bn = mnn.BatchNorm(8)
        self.up = mnn.ConvTranspose2d(8, 4, 2, stride=2)
        self.fc = mnn.Linear(4, 5)

    def __call__(self, x):
        h = mnn.relu(self.bn(self.conv(x)))
        u = self.up(h)
        return {"conv": h, "up": u, "logits": self.fc(u.mean(axis=(1, 2)))}


def _trained_bn(model):
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 3, 8, 8))
    return model.eval()


def test_torch_cnn_ported_to_mlx_matches():
    torch.manual_seed(0)
    ref = _trained_bn(TorchCNN())
    cand = MlxCNN()
    weights, found = port.port_state_dict(ref.state_dict(), cand)
    assert found == [], found
    port.load_ported(cand, weights).eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        want = {k: v.numpy() for k, v in ref(x).items()}
    got = {k: np.array(v) for k, v in cand(mx.array(x.permute(0, 2, 3, 1).numpy())).items()}
    metrics = port.compare_outputs(got, want, channels_last={"conv", "up"})
    assert set(metrics) == {"conv", "up", "logits"}
    assert all(m["max_abs"] < 1e-4 for m in metrics.values()), metrics


def test_unconverted_conv_from_torch_is_caught():
    ref = TorchCNN()
    state = {k: v.numpy() for k, v in ref.state_dict().items() if "num_batches" not in k}
    found = port.check_port(state, MlxCNN())
    codes = {f.code for f in found}
    assert "PRT003" in codes
    flagged = {f.message.split()[0] for f in found if f.code == "PRT003"}
    assert flagged == {"conv.weight", "up.weight"}


def test_torch_transformer_block_ported_to_mlx_matches():
    torch.manual_seed(1)
    d, heads = 16, 4

    class TBlock(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm1 = tnn.LayerNorm(d)
            self.attn = tnn.MultiheadAttention(d, heads, batch_first=True)
            self.norm2 = tnn.LayerNorm(d)
            self.ff1 = tnn.Linear(d, 4 * d)
            self.ff2 = tnn.Linear(4 * d, d)

        def forward(self, x):
            h = self.norm1(x)
            x = x + self.attn(h, h, h, need_weights=False)[0]
            return x + self.ff2(torch.nn.functional.gelu(self.ff1(self.norm2(x))))

    class MBlock(mnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm1 = mnn.LayerNorm(d)
            self.attn = mnn.MultiHeadAttention(d, heads, bias=True)
            self.norm2 = mnn.LayerNorm(d)
            self.ff1 = mnn.Linear(d, 4 * d)
            self.ff2 = mnn.Linear(4 * d, d)

        def __call__(self, x):
            h = self.norm1(x)
            x = x + self.attn(h, h, h)
            return x + self.ff2(mnn.gelu(self.ff1(self.norm2(x))))

    ref = TBlock().eval()
    state = ref.state_dict()
    # nn.MultiheadAttention packs q/k/v into in_proj: the rename is the port's job, stated here
    wq, wk, wv = state.pop("attn.in_proj_weight").chunk(3)
    bq, bk, bv = state.pop("attn.in_proj_bias").chunk(3)
    state.update(
        {
            "attn.query_proj.weight": wq,
            "attn.key_proj.weight": wk,
            "attn.value_proj.weight": wv,
            "attn.query_proj.bias": bq,
            "attn.key_proj.bias": bk,
            "attn.value_proj.bias": bv,
        }
    )
    state["attn.out_proj.weight"] = state.pop("attn.out_proj.weight")
    cand = MBlock()
    weights, found = port.port_state_dict(state, cand)
    assert found == [], found
    port.load_ported(cand, weights)
    x = torch.randn(2, 5, d)
    with torch.no_grad():
        want = ref(x).numpy()
    got = np.array(cand(mx.array(x.numpy())))
    metrics = port.compare_outputs({"out": got}, {"out": want})
    assert metrics["out"]["max_abs"] < 1e-4, metrics
