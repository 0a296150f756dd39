"""Objective values on hand-made activations, the algebra, and the string parser."""

from __future__ import annotations

import pytest
import torch

from featviz_widgets.engine.layers import LayerInfo
from featviz_widgets.engine.objectives import (
    L1,
    BatchChannels,
    BlurPenalty,
    Channel,
    ClassLogit,
    Context,
    DeepDream,
    Direction,
    Diversity,
    Neuron,
    Sum,
    TotalVariation,
    as_spatial,
    parse_objective,
)
from featviz_widgets.errors import ChannelRangeError, InvalidSettingError, ObjectiveSyntaxError, UnknownLayerError

# Activations: 2 images, 3 channels, 2x2; value = 100*n + 10*c + (2*y + x).
ACT = torch.tensor(
    [[[[100 * n + 10 * c + 2 * y + x for x in range(2)] for y in range(2)] for c in range(3)] for n in range(2)],
    dtype=torch.float32,
)
LOGITS = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
IMAGE = torch.full((2, 3, 4, 4), 0.5)
CTX = Context({"a": ACT, "logits": LOGITS}, IMAGE)
LAYERS = {"a": LayerInfo("a", (3, 2, 2), 0), "logits": LayerInfo("logits", (3,), 1)}


def test_channel_is_spatial_mean() -> None:
    assert Channel("a", 2)(CTX).tolist() == [21.5, 121.5]


def test_neuron_centre_and_position() -> None:
    assert Neuron("a", 1)(CTX).tolist() == [13.0, 113.0]  # centre of 2x2 is (1, 1)
    assert Neuron("a", 1, x=1, y=0)(CTX).tolist() == [11.0, 111.0]


def test_deepdream_is_mean_square() -> None:
    expected = ACT.pow(2).mean(dim=(1, 2, 3))
    assert torch.equal(DeepDream("a")(CTX), expected)


def test_class_logit_and_batch_index() -> None:
    assert ClassLogit(2)(CTX).tolist() == [3.0, 6.0]
    assert ClassLogit(2, batch=1)(CTX).tolist() == [0.0, 6.0]


def test_direction_unit_vector_dot() -> None:
    value = Direction("a", [0.0, 3.0, 4.0])(CTX)  # normalized to (0, .6, .8)
    expected = 0.6 * ACT[:, 1].mean(dim=(1, 2)) + 0.8 * ACT[:, 2].mean(dim=(1, 2))
    assert torch.allclose(value, expected)


def test_batch_channels_one_channel_per_image() -> None:
    assert BatchChannels("a", (0, 2))(CTX).tolist() == [1.5, 121.5]


def test_diversity_identical_images_is_minus_one() -> None:
    same = ACT[:1].repeat(2, 1, 1, 1)
    value = Diversity("a")(Context({"a": same}, IMAGE))
    assert torch.allclose(value, torch.tensor([-1.0, -1.0]))


def test_penalties_exact() -> None:
    img = torch.zeros(1, 3, 2, 2)
    img[0, :, 0, 0] = 1.0
    ctx = Context({}, img)
    assert L1()(ctx).item() == pytest.approx(0.5)
    # One bright corner pixel: half the horizontal and half the vertical neighbour pairs differ by 1.
    assert TotalVariation()(ctx).item() == pytest.approx(0.5 + 0.5)
    assert BlurPenalty()(Context({}, torch.full((1, 3, 4, 4), 0.3))).item() == pytest.approx(0.0, abs=1e-12)


def test_algebra_weights_apply_to_their_own_term_only() -> None:
    a, b, c = Channel("a", 0), Channel("a", 1), Channel("a", 2)
    combo = a * 1 + b * 3 + c * (-5)
    va, vb, vc = a(CTX), b(CTX), c(CTX)
    assert torch.equal(combo(CTX), va + 3 * vb - 5 * vc)  # Xplique would give -15a -15b -5c
    assert torch.equal((a - b)(CTX), va - vb)
    assert torch.equal((-a)(CTX), -va)
    assert torch.equal((a / 4)(CTX), va / 4)
    assert torch.equal((2 * (a + b))(CTX), 2 * va + 2 * vb)
    assert torch.equal(sum([a, b, c])(CTX), va + vb + vc)
    assert isinstance(combo, Sum) and [w for w, _ in combo.terms()] == [1.0, 3.0, -5.0]


def test_algebra_does_not_change_operands() -> None:
    a, b = Channel("a", 0), Channel("a", 1)
    s = a + b
    s2 = s * 3
    _ = s - a
    assert [w for w, _ in s.terms()] == [1.0, 1.0]
    assert [w for w, _ in s2.terms()] == [3.0, 3.0]
    assert a.terms() == ((1.0, a),)


def test_objective_times_objective_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        _ = Channel("a", 0) * Channel("a", 1)  # type: ignore[operator]


def test_layers_union() -> None:
    assert (Channel("a", 0) - 0.1 * L1() + ClassLogit(1)).layers == {"a", "logits"}


def test_repr_round_trips_through_eval_namespace() -> None:
    import featviz_widgets as fv

    obj = Channel("a", 0) - 0.5 * Neuron("a", 1, x=0, y=1) + ClassLogit(2)
    rebuilt = eval(repr(obj), vars(fv))  # the "copy as code" guarantee
    assert torch.equal(rebuilt(CTX), obj(CTX))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a:2", Channel("a", 2)),
        ("a", DeepDream("a")),
        ("logits:2", ClassLogit(2)),
        ("a:1@0,1", Neuron("a", 1, x=0, y=1)),
        ("a:0 + 3*a:1 - 5*a:2", Sum([(1.0, Channel("a", 0)), (3.0, Channel("a", 1)), (-5.0, Channel("a", 2))])),
        ("-a:0", Sum([(-1.0, Channel("a", 0))])),
        ("blocks.8:5", Channel("blocks.8", 5)),
        ("0.5*a:1", Sum([(0.5, Channel("a", 1))])),
    ],
)
def test_parse(text: str, expected: object) -> None:
    assert parse_objective(text) == expected


@pytest.mark.parametrize("text", ["", "a:", "a:1 a:2", "a:1 +", "3*", "__import__('os')", "a:1; rm", "a:x", "2*3*a:1"])
def test_parse_rejects_malformed(text: str) -> None:
    with pytest.raises(ObjectiveSyntaxError, match="Valid forms"):
        parse_objective(text)


def test_check_reports_ranges() -> None:
    with pytest.raises(ChannelRangeError, match="valid channels are 0 to 2"):
        Channel("a", 3).check(LAYERS, 1)
    with pytest.raises(ChannelRangeError, match="valid classes are 0 to 2"):
        ClassLogit(7).check(LAYERS, 1)
    with pytest.raises(UnknownLayerError, match="Did you mean 'a'"):
        Channel("aa", 0).check(LAYERS, 1)
    with pytest.raises(InvalidSettingError, match="3 channels"):
        Direction("a", [1.0, 0.0]).check(LAYERS, 1)
    with pytest.raises(ChannelRangeError, match="batch"):
        Channel("a", 0, batch=2).check(LAYERS, 2)


def test_as_spatial_tokens() -> None:
    tokens = torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(2, 5, 3)  # class token + 2x2 grid
    grid = as_spatial(tokens)
    assert grid.shape == (2, 3, 2, 2)
    assert torch.equal(grid[0, :, 0, 0], tokens[0, 1])
    assert as_spatial(torch.zeros(2, 7)).shape == (2, 7, 1, 1)
