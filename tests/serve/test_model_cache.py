"""The model cache (issue 20 items 6 and 17): private files, and a damaged entry counts as absent.

A damaged entry (an ``MLmodel`` that is not a mapping, a truncated or foreign ``meta.json``, a
missing or changed file) is fetched again while the store answers; while it is away the sensor
says in one line that the cache is damaged (not "no cached model", not a traceback).
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from serve.model_source import ModelError, build_model
from tests.serve.mlflow_servers import unique_name
from tests.serve.test_model_source import Store, source, store_away


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, str]]:
    """A store of this module's own (moved away by some tests) with one registered model."""
    store = Store(tmp_path_factory.mktemp("cache-store"))
    name = unique_name("cached")
    store.register(name, seed=1)
    yield store, name


def _entry(cache: Path) -> Path:
    (entry,) = [p for p in cache.iterdir() if (p / "meta.json").is_file()]
    return entry


def _truncate_meta(entry: Path) -> None:
    text = (entry / "meta.json").read_text()
    (entry / "meta.json").write_text(text[: len(text) // 2])


def _meta_not_an_object(entry: Path) -> None:
    (entry / "meta.json").write_text("[1, 2]")


def _meta_missing(entry: Path) -> None:
    (entry / "meta.json").unlink()


def _mlmodel_a_list(entry: Path) -> None:
    (entry / "MLmodel").write_text("- just\n- a list\n")


def _skops_missing(entry: Path) -> None:
    (entry / "model.skops").unlink()


def _skops_cut(entry: Path) -> None:
    data = (entry / "model.skops").read_bytes()
    (entry / "model.skops").write_bytes(data[: len(data) // 3])


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated meta.json": (_truncate_meta, r"meta\.json is not valid JSON"),
    "meta.json not an object": (_meta_not_an_object, r"meta\.json is not an object"),
    "meta.json missing": (_meta_missing, r"meta\.json is missing"),
    "MLmodel not a mapping": (_mlmodel_a_list, r"file\(s\) missing, changed or added: MLmodel"),
    "model file missing": (_skops_missing, r"file\(s\) missing, changed or added: model\.skops"),
    "model file cut": (_skops_cut, r"file\(s\) missing, changed or added: model\.skops"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_entry_is_one_line_while_the_store_is_away_and_fetched_again_when_back(
    own: tuple[Store, str], tmp_path: Path, damage: str
) -> None:
    store, name = own
    cache = tmp_path / "cache"
    assert source(store, name, cache).load().version == "1"
    harm, reason = DAMAGE[damage]
    harm(_entry(cache))
    with store_away(store):
        with pytest.raises(ModelError) as info:
            source(store, name, cache).load()
    line = str(info.value)
    assert "\n" not in line
    assert line.startswith("no tracking store at ")
    assert ", and the cached model for models:/" in line and "is damaged (" in line, line
    assert "no cached model" not in line
    assert re.search(reason, line), line
    # the store is back: the entry is replaced by a fresh download, then good for a start while away
    fresh = source(store, name, cache).load()
    assert (fresh.version, fresh.from_cache) == ("1", False)
    with store_away(store):
        again = source(store, name, cache).load()
    assert (again.version, again.from_cache) == ("1", True)


def test_an_mlmodel_that_is_not_a_mapping_is_a_model_error(own: tuple[Store, str], tmp_path: Path) -> None:
    """Whatever the cache says, the model loader itself never raises anything but one ModelError."""
    store, name = own
    cache = tmp_path / "cache"
    source(store, name, cache).load()
    entry = _entry(cache)
    meta = json.loads((entry / "meta.json").read_text())
    for text in ("- a\n- list\n", "just a string\n", "flavors: [1, 2]\n", "flavors:\n  sklearn: 3\n"):
        (entry / "MLmodel").write_text(text)
        with pytest.raises(ModelError, match="MLmodel|scikit-learn") as info:
            build_model(entry, meta, "models:/x@y", True, "auto", 1)
        assert "\n" not in str(info.value)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_cache_files_are_private(own: tuple[Store, str], tmp_path: Path) -> None:
    """Issue 20 item 6: the cache folders are 0700 and its files 0600, whatever the umask."""
    store, _ = own
    name = unique_name("private")
    store.register(name, seed=1)
    cache = tmp_path / "var" / "netsentry" / "cache"
    old = os.umask(0o022)
    try:
        src = source(store, name, cache)
        src.load()
        store.register(name, seed=2)  # the alias moves: the entry is rewritten by a poll
        assert src.poll().version == "2"
    finally:
        os.umask(old)
    assert {p.name: _mode(p) for p in (tmp_path / "var", cache.parent, cache)} == {
        "var": 0o700, "netsentry": 0o700, "cache": 0o700}
    paths = list(_entry(cache).rglob("*")) + [_entry(cache)]
    assert len(paths) >= 5
    wrong = {str(p.relative_to(cache)): oct(_mode(p)) for p in paths
             if _mode(p) != (0o700 if p.is_dir() else 0o600)}
    assert wrong == {}
    assert [p.name for p in cache.iterdir()] == [_entry(cache).name]  # no staging or download left
