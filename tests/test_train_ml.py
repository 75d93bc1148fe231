"""`genai train` on an ml project's module (issue 11 part 4): the loss goes down, a resumed run
replays the uninterrupted one exactly, NaN stops the run, bad data gives its MLT code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

mx = pytest.importorskip("mlx.core", reason="needs an importable mlx")
np = pytest.importorskip("numpy")

from genai_common.workflows import train_ml  # noqa: E402


def _model(tiny_ml: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(tiny_ml, copy)
    return copy


def test_loss_goes_down_from_fresh_weights_with_checkpoints(tiny_ml, tmp_path):
    model = _model(tiny_ml, tmp_path)
    r = train_ml.train(
        model, steps=60, checkpoint_dir=tmp_path / "ck", checkpoint_every=25,
        output=tmp_path / "trained", learning_rate=3e-3,
    )  # fmt: skip
    assert r.verdict == "pass", r.findings
    assert [f.code for f in r.findings] == ["MLT010"]
    losses = [h["loss"] for h in r.history]
    assert np.mean(losses[-6:]) < 0.7 * np.mean(losses[:6]), losses
    assert [p.name for p in train_ml.checkpoints(tmp_path / "ck")] == [
        "step_000025.safetensors", "step_000050.safetensors", "step_000060.safetensors",
    ]  # fmt: skip
    assert r.metrics["steps"] == 60 and r.metrics["step_ms_median"] > 0
    assert r.metrics["peak_mib"] >= 0 and r.metrics["peak_of"] in ("MLX", "RSS")
    # the trained folder loads through the same loader, with the trained weights
    from genai_common.runtime.loading import load_ml

    again = load_ml(r.output)
    ckpt = mx.load(r.checkpoint)
    assert np.array_equal(
        np.array(again.model.layers[0].weight), np.array(ckpt["model.layers.0.weight"])
    )
    assert not list((tmp_path / "ck").glob(".tmp-*"))


def test_resume_replays_the_uninterrupted_losses(tiny_ml, tmp_path):
    model = _model(tiny_ml, tmp_path)
    whole = train_ml.train(model, steps=30, checkpoint_dir=tmp_path / "a", checkpoint_every=10)
    first = train_ml.train(model, steps=20, checkpoint_dir=tmp_path / "b", checkpoint_every=10)
    rest = train_ml.train(
        model, steps=30, checkpoint_dir=tmp_path / "b", checkpoint_every=10, resume=True
    )
    assert rest.metrics["first_step"] == 21 and len(rest.history) == 10
    got = [h["loss"] for h in first.history + rest.history]
    assert got == [h["loss"] for h in whole.history]  # bit for bit
    a, b = mx.load(whole.checkpoint), mx.load(rest.checkpoint)
    assert all(np.array_equal(np.array(a[k]), np.array(b[k])) for k in a)


def test_resume_refuses_a_checkpoint_of_other_settings(tiny_ml, tmp_path):
    model = _model(tiny_ml, tmp_path)
    train_ml.train(model, steps=10, checkpoint_dir=tmp_path / "c", checkpoint_every=5)
    r = train_ml.train(
        model, steps=20, checkpoint_dir=tmp_path / "c", resume=True, learning_rate=0.5
    )
    assert r.verdict == "fail" and [f.code for f in r.findings] == ["MLT007"]
    assert "learning_rate 0.001 -> 0.5" in r.findings[0].message
    r = train_ml.train(model, steps=5, checkpoint_dir=tmp_path / "none", resume=True)
    assert "MLT006" in [f.code for f in r.findings] and r.verdict == "warn"


def test_nan_loss_stops_the_run_and_keeps_the_last_checkpoint(tiny_ml, tmp_path):
    model = _model(tiny_ml, tmp_path)
    x = np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32)
    y = np.arange(64, dtype=np.int32) % 10
    np.savez(tmp_path / "good.npz", x=x, y=y)
    x_bad = x.copy()
    x_bad[:, 0] = np.where(np.arange(64) % 2 == 0, np.inf, 1.0)
    np.savez(tmp_path / "bad.npz", x=x_bad, y=y)
    r = train_ml.train(model, data=tmp_path / "good.npz", steps=4, checkpoint_dir=tmp_path / "k",
                       checkpoint_every=2)  # fmt: skip
    assert r.verdict == "pass"
    r = train_ml.train(model, data=tmp_path / "bad.npz", steps=4, checkpoint_dir=tmp_path / "k2")
    assert r.verdict == "fail" and r.findings[0].code == "MLT001"
    assert "at step 1" in r.findings[0].message and r.output is None


@pytest.mark.parametrize(
    ("arrays", "code", "words"),
    [
        ({"x": np.zeros((8, 32), np.float32)}, "MLT003", "no array named y"),
        ({"x": np.zeros((8, 32), np.float32), "y": np.zeros(7, np.int32)}, "MLT003", "rows differ"),
        ({"x": np.zeros((8, 5), np.float32), "y": np.zeros(8, np.int32)}, "MLT004", "raised on x"),
        ({"x": np.zeros((8, 32), np.float32), "y": np.full(8, 10, np.int32)}, "MLT005", "[10, 10]"),
        (
            {"x": np.zeros((8, 32), np.float32), "y": np.zeros((8, 3), np.float32)},
            "MLT004",
            "targets",
        ),
    ],
)
def test_bad_data_has_its_code(tiny_ml, tmp_path, arrays, code, words):
    np.savez(tmp_path / "d.npz", **arrays)
    r = train_ml.train(_model(tiny_ml, tmp_path), data=tmp_path / "d.npz", steps=2,
                       checkpoint_dir=tmp_path / "ck")  # fmt: skip
    assert r.verdict == "fail" and [f.code for f in r.findings] == [code]
    assert words in r.findings[0].message and r.findings[0].hint


def test_missing_data_file_and_regression_targets(tiny_ml, tmp_path):
    r = train_ml.train(_model(tiny_ml, tmp_path), data=tmp_path / "nope.npz", steps=2)
    assert [f.code for f in r.findings] == ["MLT003"]
    x = np.random.default_rng(1).standard_normal((128, 32)).astype(np.float32)
    y = (x[:, :10] * 0.5).astype(np.float32)  # a regression target of the output's shape
    mx.save_safetensors(str(tmp_path / "train.safetensors"), {"x": mx.array(x), "y": mx.array(y)})
    r = train_ml.train(_model(tiny_ml, tmp_path / "m"), data=tmp_path, steps=40,
                       checkpoint_dir=tmp_path / "ck", learning_rate=3e-3)  # fmt: skip
    assert r.verdict == "pass", r.findings
    assert r.metrics["data"].endswith("train.safetensors")
    assert r.metrics["last_loss"] < r.metrics["first_loss"]


def test_the_user_conv_net_trains_in_its_project(tmp_path, monkeypatch):
    from test_ml_module import make_project

    model = make_project(tmp_path)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps(config | {"input_shape": [8, 8, 2]}))
    monkeypatch.chdir(tmp_path)
    from genai_common.cli import main

    rc = main(["train", "--steps", "30", "--checkpoint-every", "15", "--learning-rate", "3e-3",
               "--output", "models/trained"])  # fmt: skip
    assert rc == 0
    row = (tmp_path / "RESULTS.md").read_text()
    assert "| train adam lr=0.003 bs=32 |" in row and "models/trained" in row
    todo = (tmp_path / "TODO.md").read_text()
    assert "genai train" in todo and "30 steps" in todo
    assert (tmp_path / "checkpoints" / "step_000030.safetensors").is_file()
    assert (tmp_path / "train_loss.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "models" / "trained" / "config.json").is_file()


def test_a_loss_that_does_not_go_down_is_a_warning(tiny_ml, tmp_path):
    x = np.random.default_rng(2).standard_normal((16, 32)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(16, dtype=np.int32) % 10)
    r = train_ml.train(_model(tiny_ml, tmp_path), data=tmp_path / "d.npz", steps=20,
                       batch_size=16, learning_rate=0.0, checkpoint_dir=tmp_path / "ck")  # fmt: skip
    assert r.verdict == "warn" and [f.code for f in r.findings] == ["MLT002", "MLT010"]


def test_init_from_the_folders_weights_starts_where_the_trained_model_is(tiny_ml, tmp_path):
    """The tiny model was trained on its own task: from its weights the first loss is already far
    below a fresh start's (about ln 10 on ten classes)."""
    from genai_common.testing.tiny_ml import dataset

    x, y = dataset(0, 256)  # the task the fixture (seed 0) was trained on
    np.savez(tmp_path / "task.npz", x=x, y=y)
    kw = {"data": tmp_path / "task.npz", "steps": 2, "checkpoint_dir": tmp_path / "ck"}
    fresh = train_ml.train(_model(tiny_ml, tmp_path), **kw)
    warm = train_ml.train(_model(tiny_ml, tmp_path / "w"), init="weights", **kw)
    assert warm.metrics["first_loss"] < 0.5 * fresh.metrics["first_loss"], (warm, fresh)


def test_a_sequence_labelling_module_trains_on_integer_inputs(tmp_path):
    """Labels per position (y (N, T), logits (N, T, classes)) and integer inputs (token ids)."""
    import mlx.nn as nn

    class Tagger(nn.Module):
        def __init__(self, vocab: int, dims: int):
            super().__init__()
            self.embed = nn.Embedding(vocab, dims)
            self.out = nn.Linear(dims, vocab)

        def __call__(self, x):
            return self.out(nn.relu(self.embed(x)))

    model = tmp_path / "tagger"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "tagger", "vocab": 7, "dims": 16}))
    x = np.random.default_rng(3).integers(0, 7, size=(64, 5)).astype(np.int32)
    np.savez(tmp_path / "d.npz", x=x, y=(x + 1) % 7)  # learn "the next id"
    r = train_ml.train(model, data=tmp_path / "d.npz", steps=40, learning_rate=1e-2,
                       checkpoint_dir=tmp_path / "ck", model_class=Tagger)  # fmt: skip
    assert r.verdict == "pass", r.findings
    assert r.metrics["last_loss"] < 0.5 * r.metrics["first_loss"]
    bad = np.zeros((64, 4), np.int32)
    np.savez(tmp_path / "bad.npz", x=x, y=bad)
    r = train_ml.train(model, data=tmp_path / "bad.npz", steps=2, checkpoint_dir=tmp_path / "c2",
                       model_class=Tagger)  # fmt: skip
    assert [f.code for f in r.findings] == ["MLT004"] and "(4,) vs output (5, 7)" in r.findings[
        0
    ].message


def test_genai_train_takes_the_projects_data_folder_by_default(tiny_ml, tmp_path, monkeypatch,
                                                               capsys):  # fmt: skip
    from genai_common.cli import main

    (tmp_path / "pyproject.toml").write_text('[tool.genai]\nkind = "ml"\nmodel = "m"\n')
    shutil.copytree(tiny_ml, tmp_path / "m")
    (tmp_path / "data").mkdir()
    x = np.random.default_rng(4).standard_normal((40, 32)).astype(np.float32)
    np.savez(tmp_path / "data/train.npz", x=x, y=np.arange(40, dtype=np.int32) % 10)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--steps", "3", "--no-record"]) == 0
    out = capsys.readouterr().out
    assert f"data: {tmp_path / 'data/train.npz'}" in out and "MLT010" in out
    assert not (tmp_path / "RESULTS.md").exists() and not (tmp_path / "TODO.md").exists()
    assert main(["train", "--steps", "0"]) == 2
