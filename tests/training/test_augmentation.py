"""Flow-consistent augmentation: known maps moved and turned as geometry says."""

import math

import pytest
import torch

from fmanet_hf.errors import FMANetConfigError
from fmanet_hf.training.augmentation import FlowAugmentation, transform_motion_channels

SIZE = 33  # odd: the centre (16, 16) is a pixel, so quarter turns map pixels onto pixels
CENTRE = 16


def blob_input(x: int, y: int, u: float, v: float, phases: int = 2) -> torch.Tensor:
    """(1, 3 * phases, SIZE, SIZE): one pixel at (x, y) moving by (u, v); M = |(u, v)|."""
    values = torch.zeros(1, 3 * phases, SIZE, SIZE)
    for phase in range(phases):
        values[0, 3 * phase + 0, y, x] = u
        values[0, 3 * phase + 1, y, x] = v
        values[0, 3 * phase + 2, y, x] = math.hypot(u, v)
    return values


def only_pixel(channel: torch.Tensor) -> tuple[int, int]:
    nonzero = torch.nonzero(channel.abs() > 1e-4)
    assert len(nonzero) == 1, f"expected one moving pixel, found {len(nonzero)}"
    y, x = nonzero[0].tolist()
    return x, y


def transform(values, mirror=False, angle_deg=0.0, zoom=1.0, scale_vectors=False):
    return transform_motion_channels(
        values,
        mirror=torch.tensor([mirror]),
        angle=torch.tensor([math.radians(angle_deg)]),
        zoom=torch.tensor([zoom]),
        scale_vectors=scale_vectors,
    )


def test_identity_leaves_the_input_unchanged():
    values = torch.randn(2, 6, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    out = transform_motion_channels(
        values, mirror=torch.tensor([False, False]), angle=torch.zeros(2), zoom=torch.ones(2)
    )
    assert torch.allclose(out, values, atol=1e-5)


def test_mirror_moves_the_pixel_across_and_negates_u_only():
    out = transform(blob_input(x=8, y=12, u=1.0, v=0.5), mirror=True)
    for phase in range(2):
        u, v, m = out[0, 3 * phase], out[0, 3 * phase + 1], out[0, 3 * phase + 2]
        assert only_pixel(m) == (SIZE - 1 - 8, 12)
        assert u[12, SIZE - 1 - 8].item() == pytest.approx(-1.0, abs=1e-5)
        assert v[12, SIZE - 1 - 8].item() == pytest.approx(0.5, abs=1e-5)
        assert m[12, SIZE - 1 - 8].item() == pytest.approx(math.hypot(1.0, 0.5), abs=1e-5)


def test_quarter_turn_moves_right_of_centre_to_below_and_turns_the_vector_the_same_way():
    # On screen (y down) a clockwise quarter turn takes +x to +y: the pixel right of the
    # centre goes below it, and a vector pointing right ends up pointing down.
    out = transform(blob_input(x=CENTRE + 8, y=CENTRE, u=1.0, v=0.0), angle_deg=90.0)
    u, v, m = out[0, 0], out[0, 1], out[0, 2]
    assert only_pixel(m) == (CENTRE, CENTRE + 8)
    assert u[CENTRE + 8, CENTRE].item() == pytest.approx(0.0, abs=1e-5)
    assert v[CENTRE + 8, CENTRE].item() == pytest.approx(1.0, abs=1e-5)
    assert m[CENTRE + 8, CENTRE].item() == pytest.approx(1.0, abs=1e-5)


def test_small_rotation_keeps_the_flow_direction_tied_to_the_moved_content():
    # A rigid rotation field of the whole map stays a rotation field: the vector at each
    # point stays perpendicular to its radius after the map and the vectors are turned.
    ys, xs = torch.meshgrid(torch.arange(SIZE) - CENTRE, torch.arange(SIZE) - CENTRE, indexing="ij")
    values = torch.stack([-ys.float(), xs.float(), torch.hypot(xs.float(), ys.float())]).unsqueeze(0) / CENTRE
    out = transform_motion_channels(
        values, mirror=torch.tensor([False]), angle=torch.tensor([math.radians(10.0)]), zoom=torch.tensor([1.0])
    )
    inner = (xs**2 + ys**2) < (CENTRE - 2) ** 2
    radial = out[0, 0] * xs + out[0, 1] * ys
    assert radial[inner].abs().max().item() < 1e-4


def test_zoom_moves_content_outwards_and_scales_vectors_only_when_asked():
    values = blob_input(x=CENTRE + 5, y=CENTRE, u=0.4, v=0.0, phases=1)
    kept = transform(values, zoom=2.0)
    scaled = transform(values, zoom=2.0, scale_vectors=True)
    # Content at distance 5 from the centre lands at distance 10.
    for out, vector_gain in ((kept, 1.0), (scaled, 2.0)):
        y, x = divmod(int(torch.argmax(out[0, 2])), SIZE)
        assert (x, y) == (CENTRE + 10, CENTRE)
        # Before: u = M = 0.4 (pointing right). The map resamples u and M alike, so u / M
        # stays 1 unless the vectors themselves are scaled.
        assert (out[0, 0, y, x] / out[0, 2, y, x]).item() == pytest.approx(vector_gain, abs=1e-5)
        assert out[0, 1].abs().max().item() < 1e-6
    assert torch.allclose(scaled[0, 0], 2.0 * kept[0, 0], atol=1e-6)
    assert torch.allclose(scaled[0, 2], kept[0, 2], atol=1e-6)


def test_both_phases_get_the_same_transform():
    augmentation = FlowAugmentation(mirror_probability=0.5, max_rotation_deg=20.0, max_zoom=1.3)
    phase = torch.randn(4, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    values = torch.cat([phase, phase], dim=1)
    out = augmentation(values, torch.Generator().manual_seed(2))
    assert torch.equal(out[:, :3], out[:, 3:])
    assert not torch.allclose(out, values)


def test_draws_depend_only_on_the_generator():
    augmentation = FlowAugmentation()
    values = torch.randn(8, 6, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    first = augmentation(values, torch.Generator().manual_seed(7))
    again = augmentation(values, torch.Generator().manual_seed(7))
    other = augmentation(values, torch.Generator().manual_seed(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_draws_respect_the_ranges():
    augmentation = FlowAugmentation(mirror_probability=0.25, max_rotation_deg=5.0, max_zoom=1.2)
    mirror, angle, zoom = augmentation.draw(4000, torch.Generator().manual_seed(0))
    assert 0.2 < mirror.float().mean().item() < 0.3
    assert angle.abs().max().item() <= math.radians(5.0) + 1e-7
    assert zoom.min().item() >= 1 / 1.2 - 1e-6 and zoom.max().item() <= 1.2 + 1e-6


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"mirror_probability": 1.5}, "mirror_probability"),
        ({"max_rotation_deg": -1.0}, "max_rotation_deg"),
        ({"max_zoom": 0.5}, "max_zoom"),
        ({"channels_per_phase": 1}, "channels_per_phase"),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(kwargs, words):
    with pytest.raises(FMANetConfigError, match=words):
        FlowAugmentation(**kwargs)
