"""Image loading, coordinates and the checkpointable shuffled batch order."""

import numpy as np
import pytest
from PIL import Image

from experiments.harness.batches import ShuffledBatches
from experiments.harness.errors import UsageError
from experiments.tasks.image_data import load_image, pixel_coords


def test_bundled_image_is_resized_rgb_in_unit_range():
    image = load_image(None, 24)
    assert image.shape == (24, 24, 3) and image.dtype == np.float32
    assert 0.0 <= image.min() < image.max() <= 1.0


def test_bundled_photographs_by_name_and_unknown_names():
    from skimage import data as skdata

    from experiments.tasks.image_data import BUNDLED_IMAGES

    np.testing.assert_array_equal(load_image("skimage:astronaut", 24), load_image(None, 24))
    coffee = load_image("skimage:coffee", 16)
    expected = np.asarray(Image.fromarray(skdata.coffee()).resize(
        (16, 16), Image.Resampling.BILINEAR)) / np.float32(255)
    np.testing.assert_array_equal(coffee, expected)
    assert {"chelsea", "rocket"} <= set(BUNDLED_IMAGES)
    with pytest.raises(UsageError, match="skimage:camera.*astronaut, chelsea, coffee, rocket"):
        load_image("skimage:camera", 8)


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_png_and_jpeg_load_and_resize_bilinearly(tmp_path, suffix):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    path = tmp_path / f"img.{suffix}"
    Image.fromarray(pixels).save(path)
    same = load_image(str(path), 8)
    if suffix == "png":  # lossless: exact values, no resampling at the native size
        np.testing.assert_array_equal(same, pixels / np.float32(255))
    half = load_image(str(path), 4)
    expected = np.asarray(Image.fromarray(pixels).resize((4, 4), Image.Resampling.BILINEAR))
    if suffix == "png":
        np.testing.assert_array_equal(half, expected / np.float32(255))
    assert half.shape == (4, 4, 3)


def test_grayscale_becomes_rgb(tmp_path):
    path = tmp_path / "gray.png"
    Image.fromarray(np.full((4, 4), 128, np.uint8)).save(path)
    image = load_image(str(path), 4)
    assert image.shape == (4, 4, 3)
    np.testing.assert_allclose(image, 128 / 255)


def test_missing_and_non_image_files_raise_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        load_image(str(tmp_path / "nope.png"), 8)
    text = tmp_path / "notes.png"
    text.write_text("not pixels")
    with pytest.raises(UsageError, match="not an image"):
        load_image(str(text), 8)


def test_coords_span_minus_one_to_one_row_major():
    coords = pixel_coords(3, 5)
    assert coords.shape == (15, 2) and coords.dtype == np.float32
    np.testing.assert_array_equal(coords[0], [-1, -1])
    np.testing.assert_array_equal(coords[4], [-1, 1])
    np.testing.assert_array_equal(coords[-1], [1, 1])
    np.testing.assert_array_equal(coords[5], [0, -1])


def test_each_epoch_is_a_fresh_permutation_without_remainder():
    batches = ShuffledBatches(num_examples=10, batch_size=3, seed=1)
    assert batches.steps_per_epoch == 3
    epochs = [np.concatenate([batches.indices(e * 3 + k) for k in range(3)]) for e in range(3)]
    for seen in epochs:
        assert len(set(seen.tolist())) == 9  # 9 distinct examples, one left out
    assert not np.array_equal(epochs[0], epochs[1])


@pytest.mark.parametrize("stop", [1, 4, 6, 7])
def test_restored_order_matches_uninterrupted(stop):
    full = ShuffledBatches(20, 4, seed=3)
    expected = [full.indices(s) for s in range(15)]
    first = ShuffledBatches(20, 4, seed=3)
    for s in range(stop):
        first.indices(s)
    state = first.state_dict()
    resumed = ShuffledBatches(20, 4, seed=99)  # the seed is irrelevant once state is loaded
    resumed.load_state_dict(state)
    for s in range(stop, 15):
        np.testing.assert_array_equal(resumed.indices(s), expected[s])


def test_fresh_state_roundtrip_starts_at_epoch_zero():
    batches = ShuffledBatches(8, 4, seed=5)
    other = ShuffledBatches(8, 4, seed=0)
    other.load_state_dict(batches.state_dict())
    np.testing.assert_array_equal(other.indices(0), ShuffledBatches(8, 4, seed=5).indices(0))


def test_the_div2k_lion_loads_at_the_reference_size(shared_data):
    path = shared_data / "images" / "div2k_fourier_features_test" / "image_014.jpg"
    image = load_image(str(path), 256)
    assert image.shape == (256, 256, 3) and image.dtype == np.float32
    assert 0.0 <= image.min() < image.max() <= 1.0
