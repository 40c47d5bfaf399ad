"""Data read on demand: image folders decoded a batch at a time, large .npz/.npy arrays memory-mapped,
tf.data pipelines streamed, and --preprocess applied as rows are read. Figures are computed here
from the files with PIL and the interpreter, independently of edgepack."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_one_line_error, interpreter_accuracy
from edgepack.errors import DataError
from edgepack.loading import images, npy
from edgepack.loading.data import DataSpec, load_data
from edgepack.loading.preprocess import Preprocess


def image_folder(folder, per_class: int = 10, size: int = 8):
    """Classes `dark` and `light` of RGB PNGs; two of each class are the other's brightness."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, (name, level) in enumerate((("dark", 60), ("light", 190))):
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            value = level if i >= 2 else 250 - level
            pixels = np.clip(rng.normal(value, 20, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{i:02d}.png")
    return folder


def test_an_image_folder_decodes_only_the_rows_read(tmp_path, monkeypatch):
    folder = image_folder(tmp_path / "images")
    decoded = []
    original = images.read_image
    monkeypatch.setattr(images, "read_image", lambda file, *args: decoded.append(file) or original(file, *args))
    data = load_data(DataSpec(source=str(folder)), input_shape=(None, 8, 8, 3))
    assert len(data) == 20 and decoded == []
    assert data.sample(5, seed=1).x.shape == (5, 8, 8, 3) and len(decoded) == 5
    batches = data.batches(8)
    x, y = next(batches)
    assert x.shape == (8, 8, 8, 3) and y.tolist() == [0] * 8 and len(decoded) == 13
    assert [len(y) for _, y in batches] == [8, 4]


@pytest.fixture(scope="module")
def brightness(tmp_path_factory, run):
    """A float .tflite that says `light` when the mean pixel, read in [0, 1], is above 0.5, and a folder of
    images: without --preprocess scale=1/255 every image looks light."""
    import keras

    folder = tmp_path_factory.mktemp("brightness")
    inputs = keras.Input((8, 8, 3))
    dense = keras.layers.Dense(2)
    model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(inputs)))
    dense.set_weights([np.array([[-1, 1]] * 3, np.float32) / 3, np.array([0.5, -0.5], np.float32)])
    model.save(folder / "bright.keras")
    assert run("quantize", folder / "bright.keras", "-o", folder / "bright.tflite").exit_code == 0
    return {"model": folder / "bright.keras", "tflite": folder / "bright.tflite", "images": image_folder(folder / "img")}


def accuracy_of_folder(tflite, folder, scale: float) -> float:
    """Each image decoded with PIL, scaled, run alone through LiteRT."""
    from ai_edge_litert.interpreter import Interpreter
    from PIL import Image

    interpreter = Interpreter(model_path=str(tflite))
    interpreter.allocate_tensors()
    index_in, index_out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    hits = total = 0
    for label, name in enumerate(sorted(p.name for p in folder.iterdir())):
        for file in sorted((folder / name).iterdir()):
            pixels = np.asarray(Image.open(file).convert("RGB"), np.float32) * np.float32(scale)
            interpreter.set_tensor(index_in, pixels[None])
            interpreter.invoke()
            hits += int(interpreter.get_tensor(index_out)[0].argmax() == label)
            total += 1
    return hits / total


def test_evaluate_streams_an_image_folder_with_the_preprocessing_asked(run, brightness, monkeypatch):
    read = []
    original = images.ImageRows.take
    monkeypatch.setattr(images.ImageRows, "take", lambda self, index: read.append(index) or original(self, index))
    monkeypatch.setattr("edgepack.evaluation.evaluate.READ_ROWS", 8)
    result = run("evaluate", brightness["tflite"], "--data", brightness["images"], "--preprocess", "scale=1/255",
                 "--reference", brightness["model"], "--batch-size", "4", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["tflite"]["value"] == pytest.approx(accuracy_of_folder(brightness["tflite"], brightness["images"],
                                                                         1 / 255)) == pytest.approx(0.8)
    assert report["reference"]["value"] == pytest.approx(0.8)
    assert [s.stop - s.start for s in read] == [8, 8, 4], "one batch read at a time, each once for both models"
    assert report["preprocess"]["scale"] == pytest.approx(1 / 255)
    raw = json.loads(run("evaluate", brightness["tflite"], "--data", brightness["images"], "--json").stdout)
    assert raw["tflite"]["value"] == pytest.approx(accuracy_of_folder(brightness["tflite"], brightness["images"], 1))
    assert raw["tflite"]["value"] == pytest.approx(0.5) and raw["preprocess"] is None


def test_an_unknown_preprocess_family_is_one_line_exit_2(run, brightness):
    assert_one_line_error(run("evaluate", brightness["tflite"], "--data", brightness["images"], "--preprocess",
                              "mobilenet_v9"), 2, "--preprocess 'mobilenet_v9'", "unknown family", "mobilenet_v2")


@pytest.mark.parametrize("family, module", [("mobilenet_v2", "mobilenet_v2"), ("resnet50", "resnet50"),
                                            ("densenet", "densenet"), ("efficientnet", "efficientnet")])
def test_a_family_preprocesses_as_keras_applications_does(family, module):
    import keras

    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    expected = getattr(keras.applications, module).preprocess_input(x.copy())
    np.testing.assert_allclose(Preprocess(family=family).apply(x, "t"), np.asarray(expected), rtol=1e-5, atol=1e-4)


def test_preprocess_text_and_its_resolved_numbers():
    assert Preprocess.model_validate("scale=1/255 mean=0.5 std=0.25,0.5,1").model_dump() == {
        "family": None, "scale": pytest.approx(1 / 255), "offset": 0.0, "mean": [0.5], "std": [0.25, 0.5, 1.0],
        "bgr": False}
    resolved = Preprocess.model_validate("mobilenet_v2").model_dump()
    assert resolved["scale"] == pytest.approx(1 / 127.5) and resolved["offset"] == -1.0
    assert Preprocess.model_validate(resolved) == Preprocess(family="mobilenet_v2"), "a resolved copy reads back"
    with pytest.raises(ValueError, match="not both"):
        Preprocess(family="resnet50", scale=2.0)
    with pytest.raises(DataError, match="mean has 2 values but the inputs have 3 channels"):
        Preprocess(mean=[1, 2]).apply(np.zeros((1, 2, 2, 3), np.float32), "d")


# --- memory-mapped arrays --------------------------------------------------------------------------

@pytest.fixture
def map_everything(monkeypatch):
    monkeypatch.setattr(npy, "MEMORY_MAP_BYTES", 1)


def test_a_stored_npz_array_is_memory_mapped_and_read_by_rows(tmp_path, map_everything):
    x = np.arange(600, dtype=np.float32).reshape(100, 6)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(100))
    data = load_data(DataSpec(source=str(tmp_path / "d.npz")))
    assert isinstance(data._columns[0].array, np.memmap)
    assert np.array_equal(data.x, x) and np.array_equal(data.sample(7, seed=3).x, x[np.sort(
        np.random.default_rng(3).choice(100, 7, replace=False))])
    assert np.array_equal(np.concatenate([b for b, _ in data.batches(32)]), x)


def test_a_compressed_npz_is_read_not_mapped(tmp_path, map_everything):
    np.savez_compressed(tmp_path / "d.npz", x=np.ones((10, 3), np.float32))
    assert not isinstance(load_data(DataSpec(source=str(tmp_path / "d.npz")))._columns[0].array, np.memmap)


def test_nan_in_a_mapped_array_is_found_in_the_batch_that_reads_it(tmp_path, map_everything):
    x = np.zeros((50, 4), np.float32)
    x[37, 2] = np.nan
    np.savez(tmp_path / "d.npz", x=x)
    data = load_data(DataSpec(source=str(tmp_path / "d.npz")))
    with pytest.raises(DataError, match=r"inputs 'x' contain NaN or infinite values \(row 37\)"):
        list(data.batches(16))


def test_an_npy_file_gives_inputs_but_no_targets(run, tmp_path, brightness, map_everything):
    np.save(tmp_path / "x.npy", np.full((30, 8, 8, 3), 100, np.float32))
    data = load_data(DataSpec(source=str(tmp_path / "x.npy")), input_shape=(None, 8, 8, 3))
    assert data.y is None and data.sample(20).x.shape == (20, 8, 8, 3)
    assert_one_line_error(run("evaluate", brightness["tflite"], "--data", tmp_path / "x.npy"), 3, "has no targets")


# --- tf.data ---------------------------------------------------------------------------------------

def test_a_tf_data_pipeline_is_streamed_rebatched_and_sampled(tmp_path, monkeypatch, digits, run):
    (tmp_path / "valdata.py").write_text(
        "import numpy as np, tensorflow as tf\n"
        f"def load():\n    d = np.load({str(digits['val'])!r})\n"
        "    return tf.data.Dataset.from_tensor_slices((d['x'], d['y'])).batch(7)\n")
    monkeypatch.chdir(tmp_path)
    val = np.load(digits["val"])
    data = load_data(DataSpec(source="valdata:load", trust_code=True), input_shape=(None, 8, 8, 1))
    sizes = [len(y) for _, y in data.batches(16)]
    assert set(sizes[:-1]) == {16} and sum(sizes) == len(val["y"])
    sample = data.sample(30, seed=2)
    assert sample.x.shape == (30, 8, 8, 1) and len(sample.y) == 30
    assert run("quantize", digits["model"], "-o", tmp_path / "f.tflite").exit_code == 0
    result = run("evaluate", tmp_path / "f.tflite", "--data", "valdata:load", "--trust-code", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["samples"] == len(val["y"])
    assert report["tflite"]["value"] == pytest.approx(interpreter_accuracy(tmp_path / "f.tflite", val["x"], val["y"]))
