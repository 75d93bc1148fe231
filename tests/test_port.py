"""workflows/port.py: PyTorch-layout state dicts into MLX modules (issue 11 item 4)."""

from __future__ import annotations

import pytest

mx = pytest.importorskip("mlx.core", reason="mlx is not installed")
nn = pytest.importorskip("mlx.nn", reason="mlx is not installed")
np = pytest.importorskip("numpy", reason="numpy is not installed")

from genai_common.workflows import port  # noqa: E402


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 5, padding=2)
        self.bn = nn.BatchNorm(4)
        self.conv1d = nn.Conv1d(4, 5, 3)
        self.up = nn.ConvTranspose2d(4, 2, 2, stride=2)
        self.fc = nn.Linear(5, 3)

    def __call__(self, x):
        h = nn.relu(self.bn(self.conv1(x)))  # (B,H,W,4)
        up = self.up(h)
        seq = self.conv1d(h.reshape(h.shape[0], -1, 4))
        return {"up": up, "logits": self.fc(seq.mean(axis=1))}


def _torch_state(module):
    """The module's parameters written in PyTorch layout (what torch.save would hold)."""
    from mlx.utils import tree_flatten

    kinds = port.layer_kinds(module)
    state = {
        n: port.to_torch_layout(kinds[n], np.array(p)) for n, p in tree_flatten(module.parameters())
    }
    state["bn.num_batches_tracked"] = np.array(3)
    return state


def test_cnn_port_matches_with_layouts_converted():
    mx.random.seed(0)
    ref = CNN()
    ref.bn.running_mean = mx.random.normal((4,))
    ref.bn.running_var = mx.random.uniform(0.5, 2.0, (4,))
    ref.eval()
    state = _torch_state(ref)
    assert state["conv1.weight"].shape == (4, 3, 5, 5)  # (out, in, kh, kw)
    assert state["up.weight"].shape == (4, 2, 2, 2)  # (in, out, kh, kw)
    mx.random.seed(1)
    cand = CNN()
    weights, found = port.port_state_dict(state, cand)
    assert found == []
    port.load_ported(cand, weights).eval()
    x = mx.random.normal((2, 6, 6, 3))
    metrics = port.compare_outputs(
        {k: np.array(v) for k, v in cand(x).items()}, {k: np.array(v) for k, v in ref(x).items()}
    )  # both MLX: same layout
    assert set(metrics) == {"up", "logits"}
    assert all(m["max_abs"] < 1e-5 for m in metrics.values()), metrics


def test_conv_left_in_torch_layout_is_caught():
    module = CNN()
    state = _torch_state(module)
    state.pop("bn.num_batches_tracked")
    found = port.check_port(state, module)  # not converted
    codes = {f.code for f in found}
    assert "PRT003" in codes
    assert any("conv1.weight" in f.message for f in found if f.code == "PRT003")
    assert all(f.hint for f in found)


def test_unmatched_names_shape_and_tie():
    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.proj = nn.Linear(4, 6)
            self.head = nn.Linear(4, 10, bias=False)

    module = Tiny()
    state = {
        "module.embed.weight": np.zeros((10, 4), np.float32),
        "proj.weight": np.zeros((4, 6), np.float32),
        "proj.bias": np.zeros((6,), np.float32),
    }
    _, found = port.port_state_dict(state, module)
    by = {f.code: f for f in found}
    assert "module.embed.weight" in by["PRT001"].message
    assert "transpose" in by["PRT004"].message
    missing = [f.message for f in found if f.code == "PRT002"]
    assert any("head.weight" in m and "module.embed.weight" in m for m in missing)
