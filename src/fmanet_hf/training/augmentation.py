"""Flow-consistent data augmentation of the motion input (training only).

The model's input is not an image but motion: per phase the channels (u, v, M[, strain]),
where (u, v) is a displacement VECTOR at each pixel. A geometric augmentation must therefore
move the map AND turn the vectors, or it teaches the model motion that never happens (a
mirrored face whose cheeks still move to the left). For a similarity map A of the image
plane (horizontal mirror F, rotation R by ``angle``, zoom ``s``):

- the channels are resampled so that content at pixel p lands at A(p) (about the centre);
- the vectors are turned by the linear part of A: (u, v) -> R F (u, v), i.e. a mirror
  negates u, a rotation rotates (u, v) by the same angle;
- a zoom scales displacements by s only when the input is in pixels
  (``flow_normalization="none"``). With the processor's per-sample normalisations
  (``per_phase_minmax``, ``joint_max``) u, v and M are divided by the sample's own maximum
  magnitude, so scaling every vector by s cancels out: only the map is resampled.
- scalar channels (M, strain) are only resampled. M = |(u, v)| is invariant under R and F
  exactly; optical strain is invariant under rotation and mirror as well, since it is built
  from the symmetric part of the flow gradient.

Both phases get the SAME transform (the face is the same face at onset, apex and offset).
Areas that come from outside the map are filled with zeros (no motion), which is also the
normalised minimum of M.

Coordinates: x to the right, y down (image convention); a positive ``angle`` turns the
content clockwise on screen. Randomness comes only from the ``torch.Generator`` passed in,
so the augmented batch is a pure function of (batch, generator state).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import FMANetConfigError


@dataclass(frozen=True)
class FlowAugmentation:
    """Random flow-consistent similarity transforms of ``pixel_values`` (B, P*C, H, W).

    Attributes:
        mirror_probability: probability of a horizontal mirror per sample, in [0, 1].
        max_rotation_deg: rotation angle drawn uniformly from [-max, max] degrees, in [0, 45].
        max_zoom: zoom factor drawn log-uniformly from [1/max_zoom, max_zoom], >= 1
            (1 = no zoom).
        scale_vectors: multiply (u, v) by the zoom too. True only for inputs in pixels
            (``flow_normalization="none"``); see the module docstring.
        channels_per_phase: channels of one phase (3 for u, v, M; 4 with strain). The
            first two channels of each phase are (u, v); the others are scalars.
    """

    mirror_probability: float = 0.5
    max_rotation_deg: float = 10.0
    max_zoom: float = 1.1
    scale_vectors: bool = False
    channels_per_phase: int = 3

    def __post_init__(self) -> None:
        def fail(message: str) -> None:
            raise FMANetConfigError(f"Invalid flow augmentation: {message}")

        if not (isinstance(self.mirror_probability, (int, float)) and 0.0 <= self.mirror_probability <= 1.0):
            fail(f"mirror_probability must be in [0, 1], got {self.mirror_probability!r}.")
        if not (isinstance(self.max_rotation_deg, (int, float)) and 0.0 <= self.max_rotation_deg <= 45.0):
            fail(f"max_rotation_deg must be in [0, 45], got {self.max_rotation_deg!r}.")
        if not (isinstance(self.max_zoom, (int, float)) and math.isfinite(self.max_zoom) and 1.0 <= self.max_zoom <= 2.0):
            fail(f"max_zoom must be in [1, 2], got {self.max_zoom!r}.")
        if isinstance(self.channels_per_phase, bool) or not isinstance(self.channels_per_phase, int) or self.channels_per_phase < 2:
            fail(f"channels_per_phase must be an integer >= 2 (u and v first), got {self.channels_per_phase!r}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def draw(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Draw per-sample (mirror (B,) bool, angle (B,) radians, zoom (B,)) from ``generator``.

        All three are drawn for every sample, whatever the settings, so the random stream
        (and every later draw from the same generator) does not depend on the settings.
        """
        mirror_draw = torch.rand(batch_size, generator=generator)
        angle_draw = torch.rand(batch_size, generator=generator)
        zoom_draw = torch.rand(batch_size, generator=generator)
        mirror = mirror_draw < self.mirror_probability
        angle = (2.0 * angle_draw - 1.0) * math.radians(self.max_rotation_deg)
        zoom = torch.exp((2.0 * zoom_draw - 1.0) * math.log(self.max_zoom))
        return mirror, angle, zoom

    def __call__(self, pixel_values: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment a batch; see :func:`transform_motion_channels`."""
        mirror, angle, zoom = self.draw(pixel_values.shape[0], generator)
        return transform_motion_channels(
            pixel_values, mirror=mirror, angle=angle, zoom=zoom,
            channels_per_phase=self.channels_per_phase, scale_vectors=self.scale_vectors,
        )


def similarity_matrices(mirror: torch.Tensor, angle: torch.Tensor, zoom: torch.Tensor) -> torch.Tensor:
    """Linear parts (B, 2, 2) of the maps p -> zoom * R(angle) * F(mirror) * p, in (x, y)."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    flip = torch.ones_like(angle)
    flip = torch.where(mirror, -flip, flip)
    mirror_matrix = torch.diag_embed(torch.stack([flip, torch.ones_like(angle)], -1))
    return zoom[:, None, None] * rotation @ mirror_matrix


def transform_motion_channels(
    pixel_values: torch.Tensor,
    *,
    mirror: torch.Tensor,
    angle: torch.Tensor,
    zoom: torch.Tensor,
    channels_per_phase: int = 3,
    scale_vectors: bool = False,
) -> torch.Tensor:
    """Apply one similarity map per sample to motion channels, consistently for vectors.

    Args:
        pixel_values: (B, P * channels_per_phase, H, W) float; per phase (u, v, scalars...).
        mirror: (B,) bool, horizontal mirror (applied first).
        angle: (B,) radians, rotation about the map centre (positive = clockwise on screen).
        zoom: (B,) > 0, zoom about the centre (> 1 enlarges the content).
        channels_per_phase: see :class:`FlowAugmentation`.
        scale_vectors: also multiply (u, v) by ``zoom`` (inputs in pixels only).

    Returns:
        (B, P * channels_per_phase, H, W), same dtype and device. Pixels whose source lies
        outside the map are 0.
    """
    if pixel_values.ndim != 4 or pixel_values.shape[1] % channels_per_phase:
        raise FMANetConfigError(
            f"pixel_values must be (B, phases * {channels_per_phase}, H, W); got shape {tuple(pixel_values.shape)}."
        )
    batch, channels, height, width = pixel_values.shape
    device, dtype = pixel_values.device, pixel_values.dtype
    linear = similarity_matrices(mirror.to(device), angle.to(device, torch.float32), zoom.to(device, torch.float32))
    # affine_grid maps OUTPUT normalised coordinates to INPUT ones, so it takes the inverse
    # map; normalised coordinates scale x by 2/W and y by 2/H, hence the conjugation.
    to_normalised = torch.diag(torch.tensor([2.0 / width, 2.0 / height], device=device))
    from_normalised = torch.diag(torch.tensor([width / 2.0, height / 2.0], device=device))
    inverse = to_normalised @ torch.linalg.inv(linear) @ from_normalised
    theta = torch.cat([inverse, torch.zeros(batch, 2, 1, device=device)], dim=2)
    grid = F.affine_grid(theta, [batch, channels, height, width], align_corners=False)
    moved = F.grid_sample(pixel_values.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    vector_map = linear if scale_vectors else linear / zoom.to(device, torch.float32)[:, None, None]
    phases = moved.view(batch, channels // channels_per_phase, channels_per_phase, height, width)
    vectors = phases[:, :, :2]
    turned = torch.einsum("bij,bpjhw->bpihw", vector_map, vectors)
    out = torch.cat([turned, phases[:, :, 2:]], dim=2).reshape(batch, channels, height, width)
    return out.to(dtype)
