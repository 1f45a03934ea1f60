"""The novelty guard: far from the called group -> novel; BENIGN calls untouched; saved as plain arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flows.novelty import NoveltyGuard, log_scale


def clusters(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two attack groups and BENIGN in 3 features on a log scale (sizes around 60 and 1,500, rates ~1e5)."""
    rng = np.random.default_rng(seed)
    dos = np.exp(rng.normal([np.log(60), np.log(60), np.log(1e5)], 0.1, (n, 3)))
    scan = np.exp(rng.normal([np.log(40), np.log(0.5 + 1), np.log(2e4)], 0.1, (n, 3)))
    benign = np.exp(rng.normal([np.log(1500), np.log(800), np.log(3e3)], 0.5, (n, 3)))
    x = np.vstack([dos, scan, benign])
    y = np.array(["DoS"] * n + ["PortScan"] * n + ["BENIGN"] * n)
    return x, y


def test_a_flow_far_from_its_called_group_is_novel() -> None:
    x, y = clusters(2000)
    guard = NoveltyGuard.fit(x, y, coverage=0.999)
    assert set(guard.points) == {"DoS", "PortScan"}  # BENIGN calls are never second-guessed
    fresh, fresh_y = clusters(2000, seed=1)
    novel = guard.novel(fresh, fresh_y)
    assert novel[fresh_y == "BENIGN"].sum() == 0
    assert novel[fresh_y != "BENIGN"].mean() < 0.01  # the same distributions: almost all known
    odd = np.array([[1500.0, 800.0, 3e3], [60.0, 60.0, 1e5], [60.0, 60.0, 1e9]])
    assert guard.novel(odd, np.array(["DoS", "DoS", "DoS"])).tolist() == [True, False, True]
    assert guard.novel(odd, np.array(["BENIGN", "BENIGN", "BENIGN"])).tolist() == [False, False, False]
    assert guard.novel(odd, np.array(["Bot", "Bot", "Bot"])).tolist() == [False, False, False]  # unseen group


def test_repeated_rows_are_measured_once_with_the_same_answer() -> None:
    x, y = clusters(500)
    guard = NoveltyGuard.fit(x, y)
    fresh, _ = clusters(300, seed=2)
    flood = np.vstack([fresh[:300]] * 20)  # a flood: the same rows over and over
    called = np.array(["DoS"] * len(flood))
    z = (log_scale(flood) - guard.center) / guard.spread
    nearest = np.sqrt(((z[:, None, :] - guard.points["DoS"][None, :, :]) ** 2).sum(-1)).min(1)
    brute = nearest > guard.radius["DoS"]
    assert guard.novel(flood, called).tolist() == brute.tolist()
    assert 0 < brute.sum() < len(brute)  # the check above compares both outcomes


def test_saved_as_plain_arrays_and_loaded_the_same(tmp_path: Path) -> None:
    x, y = clusters(400)
    guard = NoveltyGuard.fit(x, y, coverage=0.99)
    guard.save(tmp_path / "g.npz")
    back = NoveltyGuard.load(tmp_path / "g.npz")
    assert back.radius == guard.radius and back.coverage == 0.99
    fresh, fy = clusters(400, seed=3)
    assert back.novel(fresh, fy).tolist() == guard.novel(fresh, fy).tolist()
    with np.load(tmp_path / "g.npz", allow_pickle=False) as data:  # nothing in it needs pickle
        assert all(data[k].dtype != object for k in data.files)


def test_a_file_that_is_not_a_guard_is_refused(tmp_path: Path) -> None:
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz is not a novelty guard"):
        NoveltyGuard.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "bad.npz", center=np.zeros(3), spread=np.ones(2), coverage=np.array(0.9),
             groups=np.array(["DoS"]), radius=np.array([1.0]), points_0=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="inconsistent shapes"):
        NoveltyGuard.load(tmp_path / "bad.npz")


def test_a_group_with_one_distinct_flow_is_never_novel() -> None:
    x = np.array([[1.0, 2.0]] * 5 + [[100.0, 1.0]] * 3)
    y = np.array(["Heartbleed"] * 5 + ["BENIGN"] * 3)
    guard = NoveltyGuard.fit(x, y)
    assert guard.novel(np.array([[1e6, 1e6]]), np.array(["Heartbleed"])).tolist() == [False]
