"""Hostile YAML: recipes and device profiles are read with bounded work, and every malformed file is
a ConfigError (exit 2) naming the file, never another exception, a hang or unbounded memory."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import ROOT, assert_one_line_error
from edgepack.errors import ConfigError
from edgepack.util.yamlfile import MAX_YAML_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES, load_validated, load_yaml

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
RECIPE = (ROOT / "recipes" / "demo.yaml").read_text()


def billion_laughs(levels: int = 9, width: int = 10) -> str:
    """The classic alias bomb: a few hundred bytes that expand to width**levels strings."""
    lines = ['a0: &a0 "lol"']
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """One folder for the examples hypothesis writes (a function-scoped tmp_path cannot be used)."""
    return tmp_path_factory.mktemp("yaml_fuzz")


def test_billion_laughs_is_refused_quickly_without_expanding(tmp_path):
    path = tmp_path / "laughs.yaml"
    path.write_text(billion_laughs())
    started = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert time.perf_counter() - started < 1.0
    message = str(info.value)
    assert message.startswith(f"{path}:"), message
    assert f"more than {MAX_YAML_NODES:,} values" in message and "aliases" in message


def test_billion_laughs_recipe_is_exit_2_on_the_command_line(run, tmp_path):
    path = tmp_path / "laughs.yaml"
    path.write_text("name: laughs\ndevice: host-cpu\n" + billion_laughs())
    assert_one_line_error(run("recipes", "validate", path), 2, "laughs.yaml:", "values")


def test_merge_key_bomb_is_refused(tmp_path):
    """``<<`` merges copy keys at construction time; the count at composition stops them too."""
    lines = ["b0: &b0 {k0: 1, k1: 2, k2: 3, k3: 4}"]
    for level in range(1, 8):
        merges = ", ".join([f"*b{level - 1}"] * 10)
        lines.append(f"b{level}: &b{level} {{<<: [{merges}], x{level}: 1}}")
    path = tmp_path / "merge.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="values once its aliases are expanded"):
        load_yaml(path)


def test_aliases_within_the_limit_still_work(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text("base: &base {threads: 4, modes: [int8, float32]}\npi4: *base\npi5: *base\n")
    data, line_of = load_yaml(path)
    assert data["pi4"] == data["pi5"] == {"threads": 4, "modes": ["int8", "float32"]}
    assert line_of(("pi5", "threads")) == 1  # the line where the aliased value is written


@pytest.mark.parametrize("text, fragment", [
    ("a: &a [*a]\n", "recursive alias"),
    ("[" * (MAX_YAML_DEPTH + 1) + "]" * (MAX_YAML_DEPTH + 1) + "\n", f"more than {MAX_YAML_DEPTH} levels"),
    ("[" * 100_000 + "\n", f"more than {MAX_YAML_DEPTH} levels"),
    ("when: 2024-13-45\n", "cannot read '2024-13-45' as a YAML timestamp"),
    ("threads: !!int four\n", "cannot read 'four' as a YAML int"),
    ("start: !!timestamp soon\n", "cannot read 'soon' as a YAML timestamp"),
    ("mask: 0x_\n", "cannot read '0x_' as a YAML int"),
    ("obj: !!python/object:os.system ls\n", "invalid YAML"),
])
def test_hostile_constructs_are_config_errors_naming_the_line(tmp_path, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert str(info.value).startswith(f"{path}:1: "), str(info.value)
    assert fragment in str(info.value)


def test_a_file_over_the_size_limit_is_refused_before_parsing(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text("# padding\n" * (MAX_YAML_BYTES // 10 + 1))  # valid YAML (comments), just too large
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"huge.yaml: the file is larger than 1 MiB"):
        load_yaml(path)
    assert time.perf_counter() - started < 0.5


def test_an_endless_device_file_is_read_only_up_to_the_limit():
    with pytest.raises(ConfigError, match="larger than 1 MiB"):
        load_yaml("/dev/zero")


@FUZZ
@given(text=st.text(max_size=300))
def test_random_text_is_loaded_or_a_config_error(scratch, text):
    _load_expecting_config_error(scratch, text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_are_loaded_or_a_config_error(scratch, data):
    _load_expecting_config_error(scratch, data)


def _recipe_mutations():
    """The demo recipe with a few characters replaced, inserted or deleted (YAML-significant
    characters favoured), or cut short."""
    chars = st.sampled_from(list(":-[]{},&*!|>'\"#?% \n\t") + ["yes", "0x", "2024-13-45", "<<", "\ufeff"])
    edit = st.tuples(st.sampled_from(["set", "insert", "delete"]), st.integers(0, len(RECIPE)), chars)
    cut = st.one_of(st.none(), st.integers(0, len(RECIPE)))

    def apply(edits, cut_at):
        text = RECIPE
        for kind, at, value in edits:
            at = min(at, len(text))
            text = text[:at] + ("" if kind == "delete" else value) + text[at + (kind != "insert"):]
        return text if cut_at is None else text[:cut_at]

    return st.builds(apply, st.lists(edit, min_size=1, max_size=6), cut)


@FUZZ
@given(text=_recipe_mutations())
def test_mutated_recipes_are_loaded_or_a_config_error(scratch, text):
    from edgepack.recipes.schema import Recipe

    path = _load_expecting_config_error(scratch, text.encode("utf-8", "surrogatepass"))
    try:  # the validation messages (key paths, did-you-mean) must cope with whatever loaded
        load_validated(path, Recipe, what="recipe")
        event("valid recipe")
    except ConfigError as exc:
        assert str(exc).startswith(str(path)), str(exc)


def _load_expecting_config_error(folder: Path, data: bytes) -> Path:
    path = folder / "fuzz.yaml"
    path.write_bytes(data)
    try:
        load_yaml(path)
        event("loaded")
    except ConfigError as exc:
        event("ConfigError")
        assert str(exc).startswith(str(path)), str(exc)
    return path
