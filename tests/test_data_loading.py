"""Data loading: image folders, .npz keys, code data sets, and the checks on what was loaded."""

from __future__ import annotations

import numpy as np
import pytest

from edgepack.errors import ConfigError, DataError
from edgepack.loading.data import DataSpec, fit_to_input, load_data


def test_image_folder_gives_sorted_class_indices_and_model_sized_images(tmp_path):
    from PIL import Image

    for label, name in enumerate(["cat", "dog"]):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray(np.full((16, 12), 40 * label + i, np.uint8)).save(tmp_path / name / f"{i}.png")
    (tmp_path / "dog" / "notes.txt").write_text("ignored")
    data = load_data(DataSpec(source=str(tmp_path)), input_shape=(None, 8, 6, 1))
    assert data.x.shape == (6, 8, 6, 1) and data.x.dtype == np.float32
    assert data.y.tolist() == [0, 0, 0, 1, 1, 1]
    rgb = load_data(DataSpec(source=str(tmp_path)), input_shape=(None, 8, 6, 3))
    assert rgb.x.shape == (6, 8, 6, 3)


def test_unreadable_image_names_the_file(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png"):
        load_data(DataSpec(source=str(tmp_path)), input_shape=(None, 8, 8, 1))


def test_folder_without_class_folders_is_refused(tmp_path):
    with pytest.raises(DataError, match="no class subfolders"):
        load_data(DataSpec(source=str(tmp_path)), input_shape=(None, 8, 8, 1))


def test_npz_key_options(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.ones((3, 2), np.float32), labels=np.arange(3))
    data = load_data(DataSpec(source=str(tmp_path / "d.npz"), x_key="images", y_key="labels"))
    assert data.x.shape == (3, 2) and data.y.tolist() == [0, 1, 2]


@pytest.mark.parametrize("x, y, fragment", [
    (np.zeros((0, 4), np.float32), None, "empty"),
    (np.array(["a", "b"]), None, "dtype <U1"),
    (np.zeros((3, 4), np.float32), np.zeros(2), "3 inputs but 2 targets"),
    (np.array([[np.nan, 1.0]], np.float32), None, "NaN"),
])
def test_bad_arrays_are_refused(tmp_path, x, y, fragment):
    arrays = {"x": x} if y is None else {"x": x, "y": y}
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataError, match=fragment):
        load_data(DataSpec(source=str(tmp_path / "d.npz")))


def test_truncated_npz_is_refused(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.ones((100, 8), np.float32))
    data = (tmp_path / "d.npz").read_bytes()
    (tmp_path / "d.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="d.npz"):
        load_data(DataSpec(source=str(tmp_path / "d.npz")))


def test_code_data_is_refused_without_trust(tmp_path):
    with pytest.raises(ConfigError, match="--trust-code"):
        load_data(DataSpec(source="somepkg.data:load"))


def test_tf_dataset_from_code_is_collected(tmp_path, monkeypatch):
    (tmp_path / "tfdata.py").write_text(
        "import numpy as np, tensorflow as tf\n"
        "def load():\n"
        "    x = np.ones((10, 8, 8, 1), np.float32); y = np.arange(10)\n"
        "    return tf.data.Dataset.from_tensor_slices((x, y)).batch(4)\n")
    monkeypatch.chdir(tmp_path)
    data = load_data(DataSpec(source="tfdata:load", trust_code=True), input_shape=(None, 8, 8, 1))
    assert data.x.shape == (10, 8, 8, 1) and data.y.tolist() == list(range(10))


def test_fit_to_input_casts_and_checks():
    from edgepack.loading.data import Dataset

    data = Dataset(np.zeros((2, 8, 8, 1), np.float64), None, "mem")
    assert fit_to_input(data, (None, 8, 8, 1), "float32", model_name="m").x.dtype == np.float32
    with pytest.raises(DataError, match=r"expects \(N, 4\)"):
        fit_to_input(data, (None, 4), "float32", model_name="m")
