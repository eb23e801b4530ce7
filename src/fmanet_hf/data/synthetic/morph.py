"""Landmark morphs: a synthesised identity made from two real faces.

SynthME 2.0 has fewer usable real people than it needs, so it also synthesises identities,
each a morph of two people, documented as such:

1. Both faces are similarity-aligned into one canonical frame: the first face is placed
   with its eyes level, its jaw span (landmark 0 to 16) :data:`CANONICAL_JAW_PX` wide and
   its landmark centroid at the centre of a square canvas :data:`CANVAS_JAW_RATIO` jaw
   spans wide; the second face is mapped onto the first by the least-squares similarity
   of its 68 landmarks.
2. The mean shape is the mean of the two aligned landmark sets.
3. Each face is warped piecewise-affinely to the mean shape: Delaunay triangles over the
   mean shape's 68 landmarks plus points on the canvas border, one affine map per
   triangle (a single backward remap from the parent photograph, Lanczos, anti-aliased
   when shrinking).
4. The two warped faces are cross-dissolved 50/50.

The morph's landmarks are the mean shape. Coordinates are (x, y) pixels, x right, y down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ...errors import FaceNotFoundError
from .faces import SourceFace

CANONICAL_JAW_PX = 200.0
CANVAS_JAW_RATIO = 2.4
# Points per canvas edge (corners included) added to the 68 landmarks, so the triangles
# cover the whole canvas and the background moves smoothly with the face.
BORDER_POINTS_PER_EDGE = 5


def similarity_fit(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection).

    Args:
        source: (N, 2) points, pixels.
        target: (N, 2) points, pixels.

    Returns:
        (2, 3) float64 matrix ``M`` minimising ``sum |M @ [p, 1] - q|^2`` over pairs (p, q).
    """
    source = np.asarray(source, np.float64)
    target = np.asarray(target, np.float64)
    # As complex numbers a similarity is q = a * p + b; least squares on centred points.
    p = source[:, 0] + 1j * source[:, 1]
    q = target[:, 0] + 1j * target[:, 1]
    p_mean, q_mean = p.mean(), q.mean()
    pc, qc = p - p_mean, q - q_mean
    denominator = float(np.vdot(pc, pc).real)
    if denominator < 1e-12:
        raise FaceNotFoundError("Degenerate landmarks: all points coincide, no similarity can be fitted.")
    a = np.vdot(pc, qc) / denominator
    b = q_mean - a * p_mean
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(2, 3) affine matrix applied to (N, 2) points -> (N, 2) float64."""
    points = np.asarray(points, np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine matrix, (2, 3)."""
    return cv2.invertAffineTransform(np.asarray(matrix, np.float64))


def canonical_placement(landmarks: np.ndarray, canvas_px: int, jaw_px: float = CANONICAL_JAW_PX) -> np.ndarray:
    """(2, 3) similarity putting a face eyes-level, jaw ``jaw_px`` wide, centroid at the canvas centre."""
    landmarks = np.asarray(landmarks, np.float64)
    eyes = landmarks[42:48].mean(axis=0) - landmarks[36:42].mean(axis=0)
    jaw = float(np.hypot(*(landmarks[16] - landmarks[0])))
    if jaw < 1e-3:
        raise FaceNotFoundError("Degenerate landmarks: the jaw span is zero.")
    angle = -math.atan2(eyes[1], eyes[0])
    scale = jaw_px / jaw
    linear = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    centre = np.array([(canvas_px - 1) / 2.0, (canvas_px - 1) / 2.0])
    return np.hstack([linear, (centre - linear @ landmarks.mean(axis=0))[:, None]])


def border_points(width: int, height: int, per_edge: int = BORDER_POINTS_PER_EDGE) -> np.ndarray:
    """(K, 2) points evenly spaced on the border of a width x height canvas (corners included)."""
    xs = np.linspace(0.0, width - 1.0, per_edge)
    ys = np.linspace(0.0, height - 1.0, per_edge)
    points = [(x, 0.0) for x in xs] + [(x, height - 1.0) for x in xs]
    points += [(0.0, y) for y in ys[1:-1]] + [(width - 1.0, y) for y in ys[1:-1]]
    return np.array(points, np.float64)


def piecewise_affine_map(target_points: np.ndarray, source_points: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Backward map of the piecewise-affine warp that moves ``source_points`` onto ``target_points``.

    The target points are triangulated (Delaunay); every pixel of the output takes the
    barycentric coordinates of its target triangle and applies them to the same triangle
    of source points. Pixels outside every triangle map to themselves.

    Args:
        target_points: (K, 2) points in the output image, pixels; should include the
            output border so the triangles cover it.
        source_points: (K, 2) corresponding points in the input image, pixels.
        shape: (height, width) of the output, pixels.

    Returns:
        (map_x, map_y): two (H, W) float32 arrays for ``cv2.remap``.
    """
    from scipy.spatial import Delaunay

    target_points = np.asarray(target_points, np.float64)
    source_points = np.asarray(source_points, np.float64)
    height, width = shape
    triangulation = Delaunay(target_points)
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    pixels = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)
    simplex = triangulation.find_simplex(pixels)
    inside = simplex >= 0
    transform = triangulation.transform[simplex[inside]]  # (P, 3, 2): inverse barycentric map, offset
    partial = np.einsum("pij,pj->pi", transform[:, :2], pixels[inside] - transform[:, 2])
    barycentric = np.concatenate([partial, 1.0 - partial.sum(axis=1, keepdims=True)], axis=1)  # (P, 3)
    corners = source_points[triangulation.simplices[simplex[inside]]]  # (P, 3, 2)
    mapped = pixels.copy()
    mapped[inside] = np.einsum("pk,pkd->pd", barycentric, corners)
    return (mapped[:, 0].reshape(height, width).astype(np.float32), mapped[:, 1].reshape(height, width).astype(np.float32))


@dataclass(frozen=True)
class Morph:
    """A morph of two faces.

    Attributes:
        face: the morph: (S, S, 3) uint8 RGB canvas and its (68, 2) landmarks (the mean shape).
        first_aligned: (68, 2) first parent's landmarks in the canonical frame, pixels.
        second_aligned: (68, 2) second parent's landmarks in the canonical frame, pixels.
    """

    face: SourceFace
    first_aligned: np.ndarray
    second_aligned: np.ndarray


def _warp_to_shape(parent: SourceFace, placement: np.ndarray, aligned: np.ndarray, mean_shape: np.ndarray, size: int) -> np.ndarray:
    """Parent photograph -> canvas with its aligned landmarks moved onto the mean shape, float32."""
    border = border_points(size, size)
    map_x, map_y = piecewise_affine_map(np.vstack([mean_shape, border]), np.vstack([aligned, border]), (size, size))
    # Canonical coordinates -> parent photograph coordinates.
    back = invert_affine(placement)
    photo_x = back[0, 0] * map_x + back[0, 1] * map_y + back[0, 2]
    photo_y = back[1, 0] * map_x + back[1, 1] * map_y + back[1, 2]
    image = parent.rgb.astype(np.float32)
    scale = math.sqrt(abs(np.linalg.det(placement[:, :2])))
    if scale < 1.0:
        # Anti-alias before shrinking: Gaussian matched to the lost bandwidth.
        image = cv2.GaussianBlur(image, (0, 0), 0.5 * math.sqrt(1.0 / (scale * scale) - 1.0))
    warped = cv2.remap(image, photo_x.astype(np.float32), photo_y.astype(np.float32), cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT101)
    return np.clip(warped, 0.0, 255.0)


def morph_faces(first: SourceFace, second: SourceFace, *, jaw_px: float = CANONICAL_JAW_PX) -> Morph:
    """Landmark morph of two faces (50/50 shape and texture).

    Args:
        first: (H1, W1, 3) uint8 RGB photograph with its (68, 2) landmarks; defines the
            canonical frame (eyes level, jaw ``jaw_px`` wide, centroid at the centre).
        second: the other parent, least-squares similarity-aligned onto the first.
        jaw_px: jaw span of the first parent in the canvas, pixels; the canvas is a square
            :data:`CANVAS_JAW_RATIO` times as wide.

    Returns:
        :class:`Morph`: the (S, S, 3) uint8 cross-dissolve with the mean shape as its
        (68, 2) float32 landmarks, and both parents' aligned landmarks.
    """
    size = int(round(CANVAS_JAW_RATIO * jaw_px))
    first_placement = canonical_placement(first.landmarks, size, jaw_px)
    first_aligned = apply_affine(first_placement, first.landmarks)
    fit = similarity_fit(second.landmarks, first_aligned)
    second_aligned = apply_affine(fit, second.landmarks)
    mean_shape = 0.5 * (first_aligned + second_aligned)
    first_warped = _warp_to_shape(first, first_placement, first_aligned, mean_shape, size)
    second_warped = _warp_to_shape(second, fit, second_aligned, mean_shape, size)
    blend = np.rint(0.5 * first_warped + 0.5 * second_warped).astype(np.uint8)
    return Morph(
        face=SourceFace(rgb=blend, landmarks=mean_shape.astype(np.float32)),
        first_aligned=first_aligned,
        second_aligned=second_aligned,
    )


__all__ = [
    "BORDER_POINTS_PER_EDGE",
    "CANONICAL_JAW_PX",
    "CANVAS_JAW_RATIO",
    "Morph",
    "apply_affine",
    "border_points",
    "canonical_placement",
    "invert_affine",
    "morph_faces",
    "piecewise_affine_map",
    "similarity_fit",
]
