"""Bad-input matrix: image frames (formats, sizes, values, broken files)."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.helpers.assertions import assert_error
from fmanet_hf.errors import (
    FrameCountError,
    FrameSizeMismatchError,
    ImageLoadError,
    InvalidFrameError,
)
from fmanet_hf.frames import load_triplet, to_gray_float

LUMA = np.array([0.299, 0.587, 0.114])


def luma(rgb: np.ndarray) -> np.ndarray:
    """Independent ITU-R 601 luma in float64."""
    return rgb[..., :3].astype(np.float64) @ LUMA


# ----------------------------------------------------------------- graceful conversions
def test_16bit_png_equals_its_8bit_version(tmp_path, textured_gray):
    # v * 257 maps [0, 255] exactly onto [0, 65535]: the 16-bit file is the same picture.
    Image.fromarray(textured_gray.astype(np.uint16) * 257).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as check:
        assert check.mode.startswith("I")  # really stored as 16-bit
    np.testing.assert_allclose(to_gray_float(tmp_path / "deep.png"), textured_gray.astype(np.float64), atol=1e-3)


def test_16bit_array_equals_its_8bit_version(textured_gray):
    np.testing.assert_allclose(to_gray_float(textured_gray.astype(np.uint16) * 257), textured_gray, atol=1e-3)


def test_rgba_alpha_is_dropped(tmp_path, textured_rgb):
    alpha = np.random.default_rng(0).integers(0, 256, textured_rgb.shape[:2], dtype=np.uint8)
    rgba = np.dstack([textured_rgb, alpha])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    expected = luma(textured_rgb)
    np.testing.assert_allclose(to_gray_float(tmp_path / "rgba.png"), expected, atol=0.51)
    np.testing.assert_allclose(to_gray_float(rgba), expected, atol=1e-3)
    np.testing.assert_array_equal(to_gray_float(rgba), to_gray_float(textured_rgb))


def test_palette_image_uses_its_palette_colours(tmp_path, textured_rgb):
    Image.fromarray(textured_rgb).quantize(colors=32).save(tmp_path / "palette.png")
    with Image.open(tmp_path / "palette.png") as image:
        assert image.mode == "P"
        indices = np.asarray(image)
        palette = np.array(image.getpalette(), dtype=np.float64).reshape(-1, 3)
    expected = palette[indices] @ LUMA  # palette lookup done here, independently of PIL's convert
    np.testing.assert_allclose(to_gray_float(tmp_path / "palette.png"), expected, atol=0.51)


@pytest.mark.parametrize("mode", ["L", "LA"])
def test_grayscale_files_keep_their_grey_levels(tmp_path, textured_gray, mode):
    image = Image.fromarray(textured_gray, mode="L")
    if mode == "LA":
        image.putalpha(128)
    image.save(tmp_path / f"{mode}.png")
    np.testing.assert_array_equal(to_gray_float(tmp_path / f"{mode}.png"), textured_gray.astype(np.float32))


def test_single_channel_array_and_bool_mask(textured_gray):
    np.testing.assert_array_equal(to_gray_float(textured_gray[:, :, None]), textured_gray.astype(np.float32))
    mask = textured_gray > 128
    np.testing.assert_array_equal(to_gray_float(mask), np.where(mask, 255.0, 0.0))


def _jpeg_with_orientation(path, pixels: np.ndarray, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels, mode="L").save(path, quality=100, exif=exif.tobytes())


@pytest.mark.parametrize("orientation, rotation", [(3, 2), (6, -1), (8, 1)])
def test_exif_rotated_jpeg_is_turned_upright(tmp_path, orientation, rotation):
    # Non-square, so a forgotten rotation shows as a shape error, not a subtle mismatch.
    y, x = np.mgrid[0:48, 0:80].astype(np.float64)
    stored = np.clip(40 + 2 * x + y, 0, 255).astype(np.uint8)
    path = tmp_path / f"orient{orientation}.jpg"
    _jpeg_with_orientation(path, stored, orientation)
    with Image.open(path) as raw:  # the stored pixels, without any EXIF handling
        decoded = np.asarray(raw.convert("L"), dtype=np.float64)
    # EXIF 3 = rotate 180, 6 = rotate 90 clockwise to display, 8 = 90 counter-clockwise.
    expected = np.rot90(decoded, k=rotation)
    result = to_gray_float(path)
    assert result.shape == expected.shape
    np.testing.assert_allclose(result, expected, atol=1e-3)


def test_cmyk_jpeg_is_converted_like_pil_does(tmp_path, textured_rgb):
    Image.fromarray(textured_rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=100)
    with Image.open(tmp_path / "cmyk.jpg") as image:
        assert image.mode == "CMYK"
        expected = luma(np.asarray(image.convert("RGB")))
    np.testing.assert_allclose(to_gray_float(tmp_path / "cmyk.jpg"), expected, atol=0.51)


def test_rgba_triplet_gives_the_same_model_input_as_rgb(fast_processor, textured_rgb):
    shifted = [np.roll(textured_rgb, s, axis=1) for s in (0, 1, 0)]
    alpha = np.full(textured_rgb.shape[:2], 7, np.uint8)
    rgba = [np.dstack([f, alpha]) for f in shifted]
    expected = fast_processor(*shifted)["pixel_values"]
    np.testing.assert_array_equal(fast_processor(*rgba)["pixel_values"], expected)


# ----------------------------------------------------------------- refused values
def test_frames_of_different_sizes(textured_gray):
    with pytest.raises(FrameSizeMismatchError) as excinfo:
        load_triplet([textured_gray, textured_gray[:40], textured_gray])
    assert_error(excinfo, FrameSizeMismatchError, "same size", "apex 40x64", "resize")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_values(textured_gray, bad):
    frame = textured_gray.astype(np.float32) / 255.0
    frame[3, 5] = bad
    with pytest.raises(InvalidFrameError) as excinfo:
        to_gray_float(frame, "apex")
    assert_error(excinfo, InvalidFrameError, "apex", "NaN or infinite", "nan_to_num")


def test_float_frame_in_0_255_is_refused_with_the_fix(textured_gray):
    with pytest.raises(InvalidFrameError) as excinfo:
        to_gray_float(textured_gray.astype(np.float32))
    assert_error(excinfo, InvalidFrameError, "[0, 1]", "Divide 8-bit data by 255")


def test_negative_integer_frame(textured_gray):
    with pytest.raises(InvalidFrameError) as excinfo:
        to_gray_float(textured_gray.astype(np.int32) - 300)
    assert_error(excinfo, InvalidFrameError, "integer array", "uint8")


def test_complex_frame(textured_gray):
    with pytest.raises(InvalidFrameError) as excinfo:
        to_gray_float(textured_gray.astype(np.complex64))
    assert_error(excinfo, InvalidFrameError, "unsupported dtype", "complex64")


@pytest.mark.parametrize("shape", [(64, 64, 2), (2, 64, 64, 3), (4096,)], ids=["2-channels", "4d", "1d"])
def test_unsupported_shapes(shape):
    with pytest.raises(InvalidFrameError) as excinfo:
        to_gray_float(np.zeros(shape, np.uint8), "onset")
    assert_error(excinfo, InvalidFrameError, "onset", str(shape), "(H, W)")


def test_too_small_frame():
    with pytest.raises(InvalidFrameError) as excinfo:
        to_gray_float(np.zeros((10, 200), np.uint8))
    assert_error(excinfo, InvalidFrameError, "10x200", "16x16")


def test_two_frames_instead_of_three(textured_gray):
    with pytest.raises(FrameCountError) as excinfo:
        load_triplet([textured_gray, textured_gray])
    assert_error(excinfo, FrameCountError, "exactly 3", "got 2")


# ----------------------------------------------------------------- broken files
def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageLoadError) as excinfo:
        to_gray_float(tmp_path / "empty.png")
    assert_error(excinfo, ImageLoadError, "empty.png", "0 bytes", "Re-extract")


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_truncated_image_file(tmp_path, textured_rgb, suffix):
    good = tmp_path / f"good.{suffix}"
    Image.fromarray(textured_rgb).save(good)
    broken = tmp_path / f"broken.{suffix}"
    broken.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ImageLoadError) as excinfo:
        to_gray_float(broken)
    assert_error(excinfo, ImageLoadError, f"broken.{suffix}", "Could not read")


def test_text_file_named_png(tmp_path):
    (tmp_path / "fake.png").write_text("not pixels")
    with pytest.raises(ImageLoadError) as excinfo:
        to_gray_float(tmp_path / "fake.png")
    assert_error(excinfo, ImageLoadError, "fake.png", "PNG/JPEG")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(ImageLoadError) as excinfo:
        to_gray_float(tmp_path)
    assert_error(excinfo, ImageLoadError, "is a folder")


def _png_claiming_size(path, width: int, height: int) -> None:
    """A tiny PNG whose header claims width x height (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def test_decompression_bomb_header_is_refused_before_decoding(tmp_path):
    _png_claiming_size(tmp_path / "bomb.png", 100_000, 100_000)  # 10 gigapixels
    with pytest.raises(ImageLoadError) as excinfo:
        to_gray_float(tmp_path / "bomb.png")
    assert_error(excinfo, ImageLoadError, "bomb.png", "pixels")
