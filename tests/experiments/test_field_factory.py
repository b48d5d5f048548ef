"""``experiments.tasks.field_factory``: the one place the tasks build their fields."""

from __future__ import annotations

import pytest

import fields
from experiments.harness.errors import UsageError
from experiments.tasks import image, nerf, occupancy
from experiments.tasks.field_factory import make_field, make_radiance_field


def test_every_task_builds_from_the_shared_factory() -> None:
    assert image.make_field is make_field
    assert occupancy.make_field is make_field
    assert nerf.make_radiance_field is make_radiance_field


def test_make_field_sets_the_head_and_sizes() -> None:
    model = make_field("gaussian", 3, 16, out_features=1, sigma=0.09)
    assert model == fields.make("gaussian", depth=3, width=16, out_features=1, sigma=0.09)
    assert make_field("sine") == fields.make("sine", out_features=3)


@pytest.mark.parametrize(("call", "match"), [
    (lambda: make_field("nope"), "--activation 'nope': expected one of"),
    (lambda: make_field("sine", 1, 16), "--activation sine --depth 1 --width 16"),
    (lambda: make_radiance_field("gaussian", 4, 0), "--activation gaussian --depth 4 --width 0"),
])
def test_bad_settings_are_one_line_usage_errors(call, match) -> None:
    with pytest.raises(UsageError, match=match):
        call()


@pytest.mark.parametrize(("depth", "skips"), [(2, ()), (4, (2,)), (6, (3,))])
def test_shallow_radiance_field_moves_its_skip(depth: int, skips: tuple[int, ...]) -> None:
    model = make_radiance_field("gaussian", depth, 32)
    assert (model.depth, model.width, tuple(model.skips)) == (depth, 32, skips)


def test_paper_depth_radiance_field_keeps_the_default_skip() -> None:
    assert make_radiance_field("relu_pe", 8, None) == fields.make_radiance(activation="relu_pe",
                                                                           depth=8)
