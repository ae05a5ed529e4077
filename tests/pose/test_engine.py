"""Tests for poselab.pose.engine: the shared training loop, evaluation and checkpoints."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from poselab.errors import PoselabError
from poselab.pose import engine


def regression_batches(n_batches: int = 8, b: int = 16, seed: int = 0) -> list[dict]:
    """y = 3x - 1 with a little noise, as {"x": (B, 1), "y": (B, 1)} batches."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        x = torch.randn(b, 1, generator=g)
        out.append({"x": x, "y": 3 * x - 1 + 0.01 * torch.randn(b, 1, generator=g)})
    return out


def mse_loss(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
    loss = F.mse_loss(model(batch["x"]), batch["y"])
    return loss, {"half_loss": loss.item() / 2}


def test_resolve_device_cpu_and_auto(monkeypatch):
    assert engine.resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert engine.resolve_device("auto") == torch.device("cpu")
    assert engine.resolve_device(" CPU ") == torch.device("cpu")


def test_resolve_device_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(PoselabError, match="CUDA is not available"):
        engine.resolve_device("cuda")
    with pytest.raises(PoselabError, match="CUDA is not available"):
        engine.resolve_device("cuda:1")
    with pytest.raises(PoselabError, match="MPS"):
        engine.resolve_device("mps")
    with pytest.raises(PoselabError, match="unknown"):
        engine.resolve_device("tpu")


def test_move_to_and_batch_size_on_nested_batches():
    batch = {"image": torch.zeros(5, 3, 8, 8), "meta": {"ids": [torch.arange(5)]}, "name": "a"}
    moved = engine.move_to(batch, torch.device("cpu"))
    assert moved["name"] == "a"
    assert moved["meta"]["ids"][0].tolist() == [0, 1, 2, 3, 4]
    assert engine.batch_size(batch) == 5
    assert engine.batch_size((torch.zeros(7, 2), torch.zeros(7))) == 7
    with pytest.raises(TypeError, match="no tensor"):
        engine.batch_size({"name": "a"})


def test_train_one_epoch_learns_and_reports():
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batches = regression_batches()
    first = engine.train_one_epoch(model, batches, optimizer, mse_loss, torch.device("cpu"))
    for _ in range(5):
        last = engine.train_one_epoch(model, batches, optimizer, mse_loss, torch.device("cpu"))
    assert first["n"] == last["n"] == 8 * 16
    assert first["seconds"] > 0
    assert last["loss"] < first["loss"] / 10
    assert last["half_loss"] == pytest.approx(last["loss"] / 2, rel=1e-5)
    assert model.weight.item() == pytest.approx(3.0, abs=0.05)
    assert model.bias.item() == pytest.approx(-1.0, abs=0.05)


def test_train_one_epoch_steps_scheduler_per_batch():
    model = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5**step)
    engine.train_one_epoch(model, regression_batches(n_batches=4), optimizer, mse_loss,
                           torch.device("cpu"), scheduler=scheduler)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5**4)


def test_train_one_epoch_pose_like_batch_with_bf16_autocast():
    """A dict batch of image, heatmaps and mask fits the same loop (the pose model's shape)."""
    g = torch.Generator().manual_seed(0)
    b, k = 4, 3
    batches = [{"image": torch.randn(b, 3, 16, 16, generator=g),  # (B, C, H, W)
                "heatmaps": torch.rand(b, k, 8, 8, generator=g),  # (B, K, h, w)
                "mask": torch.tensor([[1.0, 1.0, 0.0]]).repeat(b, 1)}  # (B, K); 0 = unlabeled
               for _ in range(3)]
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, k, 3, stride=2,
                                                                            padding=1))

    def heatmap_loss(model, batch):
        pred = model(batch["image"]).float()  # (B, K, h, w)
        per_kp = ((pred - batch["heatmaps"]) ** 2).mean(dim=(2, 3))  # (B, K)
        loss = (per_kp * batch["mask"]).sum() / batch["mask"].sum()
        return loss, {}

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    out = engine.train_one_epoch(model, batches, optimizer, heatmap_loss, torch.device("cpu"),
                                 autocast_dtype=torch.bfloat16, clip_grad_norm=1.0,
                                 progress=False)
    assert out["n"] == 12 and math.isfinite(out["loss"])


def test_train_one_epoch_rejects_nan_loss():
    model = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def nan_loss(model, batch):
        return model(batch["x"]).sum() * float("nan"), {}

    with pytest.raises(FloatingPointError, match="lower the lr"):
        engine.train_one_epoch(model, regression_batches(2), optimizer, nan_loss,
                               torch.device("cpu"))


def test_evaluate_nan_mean_and_kept_values():
    model = nn.Identity()
    batches = [{"x": torch.tensor([1.0, float("nan"), 3.0])}, {"x": torch.tensor([5.0])}]

    def metrics(model, batch):
        x = model(batch["x"])
        return {"err": x, "idx": torch.arange(len(x))}

    out = engine.evaluate(model, batches, metrics, torch.device("cpu"), keep=True)
    assert out["err"] == pytest.approx(3.0)  # the NaN (an unlabeled keypoint) is ignored
    assert "idx" not in out  # integer values are collected, not averaged
    assert out["n"] == 4
    assert out["values"]["idx"].tolist() == [0, 1, 2, 0]
    assert out["values"]["err"].shape == (4,)
    assert "values" not in engine.evaluate(model, batches, metrics, torch.device("cpu"))


def test_evaluate_uses_eval_mode():
    model = nn.Sequential(nn.Dropout(0.5))
    batches = [{"x": torch.ones(100)}]
    out = engine.evaluate(model, batches, lambda m, b: {"v": m(b["x"])}, torch.device("cpu"))
    assert out["v"] == 1.0  # dropout off: eval mode
    assert not model.training


def test_checkpoint_round_trip_weights_only(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    optimizer = torch.optim.Adam(model.parameters())
    engine.train_one_epoch(model, [{"x": torch.randn(2, 1, 8, 8), "y": torch.tensor([0, 1])}],
                           optimizer, lambda m, b: (F.cross_entropy(m(b["x"]), b["y"]), {}),
                           torch.device("cpu"))
    path = engine.save_checkpoint(
        tmp_path / "run" / "checkpoint.pt", model=model.state_dict(),
        optimizer=optimizer.state_dict(), config={"lr": 1e-3, "names": ["a", "b"], "n": None},
        epoch=3, normalization={"mean": (0.5,), "std": (0.25,)}, dtype=torch.float32)
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]  # no temp file left
    raw = torch.load(path, weights_only=True)  # plain data only: loads without unpickling code
    assert raw["epoch"] == 3
    data = engine.load_checkpoint(path)
    assert data["config"] == {"lr": 1e-3, "names": ["a", "b"], "n": None}
    assert data["dtype"] is torch.float32
    clone = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    clone.load_state_dict(data["model"])
    x = torch.randn(3, 1, 8, 8)
    assert torch.equal(clone(x), model(x))
    torch.optim.Adam(clone.parameters()).load_state_dict(data["optimizer"])


def test_save_checkpoint_rejects_non_plain_data(tmp_path):
    with pytest.raises(TypeError, match="PosixPath|WindowsPath"):
        engine.save_checkpoint(tmp_path / "c.pt", config={"data": tmp_path})
    with pytest.raises(TypeError, match="Linear"):
        engine.save_checkpoint(tmp_path / "c.pt", model=nn.Linear(1, 1))
    assert list(tmp_path.iterdir()) == []


def test_save_checkpoint_is_atomic(tmp_path, monkeypatch):
    path = engine.save_checkpoint(tmp_path / "c.pt", epoch=1)

    def broken_save(obj, f):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        engine.save_checkpoint(path, epoch=2)
    assert engine.load_checkpoint(path)["epoch"] == 1  # the old checkpoint survives intact
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


class NotPlain:
    pass


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(PoselabError, match="not found"):
        engine.load_checkpoint(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(PoselabError, match="garbage.pt: not a readable"):
        engine.load_checkpoint(garbage)
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"obj": NotPlain()}, unsafe)  # would need arbitrary unpickling to load
    with pytest.raises(PoselabError, match="unsafe.pt"):
        engine.load_checkpoint(unsafe)
    listed = tmp_path / "list.pt"
    torch.save([1, 2], listed)
    with pytest.raises(PoselabError, match="holds a list"):
        engine.load_checkpoint(listed)
