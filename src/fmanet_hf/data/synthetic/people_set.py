"""Rendering a SynthME 2.0 set: one subject per person, clips in the person's sessions.

:func:`render_people_set` writes the frames of every clip into the CASME II layout and
returns what the sheet and the manifest need; :func:`fmanet_hf.data.synthetic.generate_synthme`
(``generator_version="2.0"``) validates the arguments, calls it in a staging folder, writes
the sheet and manifest and moves the folder into place.

Subject ``subNN`` is the NN-th person of the list (a group's order, see
:data:`.people.PERSON_GROUPS`). Each person's sessions are drawn once (:mod:`.sessions`) and
each session's neutral image is rendered once and reused by the clips that draw it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DatasetError

from .clips import STREAM_PERSON_ORDER, draw_person_sample
from .layout import write_jpeg
from .people import Person, group_of
from .person_faces import PersonFace, load_person_face
from .renderer import RenderedSubject, render_person_clip, render_subject
from .sessions import SESSIONS_PER_PERSON, draw_session, person_stream_key


@dataclass(frozen=True)
class PeopleSetSettings:
    """The validated arguments of a 2.0 set.

    Attributes:
        seed: master seed (>= 0).
        class_names: requested classes (MEGC classes and/or native emotions).
        samples_per_class: clips per person and class.
        frames_per_clip: frames per clip N.
        size: frame (height, width), pixels.
        amplitude_range: (low, high) peak displacement at the apex, pixels.
        grayscale: write single-channel frames.
        masked_fraction: share of negative clips that are masked, in [0, 1].
    """

    seed: int
    class_names: tuple[str, ...]
    samples_per_class: int
    frames_per_clip: int
    size: tuple[int, int]
    amplitude_range: tuple[float, float]
    grayscale: bool
    masked_fraction: float


@dataclass
class PeopleSet:
    """What :func:`render_people_set` wrote, for the sheet and the manifest.

    Attributes:
        rows: one sheet row per clip (the CASME II columns).
        samples: one manifest record per clip (:class:`.clips.PersonSampleParameters` as a dict).
        subjects: one manifest record per subject: person, group, kind, parents, sources,
            licences, provenance and its sessions with their neutral landmarks.
        face_sources: one record per photograph file used (package, version, file, sha256,
            licence, and ``people``: the real people whose face was taken from it, morph
            parents included).
    """

    rows: list[dict[str, Any]]
    samples: list[dict[str, Any]]
    subjects: list[dict[str, Any]]
    face_sources: list[dict[str, Any]]


def _photograph_records(face: PersonFace) -> list[dict[str, Any]]:
    return list(face.provenance["parents"]) if face.person.kind == "morph" else [face.provenance]


def _subject_record(number: int, face: PersonFace, sessions: list, rendered: dict[int, RenderedSubject]) -> dict[str, Any]:
    photographs = _photograph_records(face)
    return {
        "subject": number,
        "person": face.person.id,
        "group": group_of(face.person.id),
        "kind": face.person.kind,
        "parents": list(face.person.parents),
        "sources": [f"{p['package']}/{p['file']}" for p in photographs],
        "licences": [p["licence"] for p in photographs],
        "provenance": face.provenance,
        "sessions": [
            dict(asdict(session), neutral_landmarks=np.round(rendered[session.session].landmarks, 2).tolist())
            if session.session in rendered else asdict(session)
            for session in sessions
        ],
    }


#: Random-stream id of the detection probes (fixed forever: changing it changes 2.0 sets).
STREAM_DETECTION_PROBE = 14
#: Replacement draws tried for a session whose face the detector misses before giving up.
MAX_SESSION_ATTEMPTS = 16


#: Noisy, shifted, JPEG-compressed copies of a session's neutral face that the detector must
#: also find: a face found only in the clean image is lost in some clips' onset frames.
DETECTION_PROBES = 6


def _detection_probes(neutral: np.ndarray, seed: int, person_id: str, index: int, attempt: int) -> list[np.ndarray]:
    """The clean neutral (uint8) and `DETECTION_PROBES` copies with the clips' worst nuisance:
    sensor noise at the top of its range, a sub-pixel shift of up to half a pixel, and the
    written frames' JPEG compression (seeded by the session, so the check is deterministic)."""
    import cv2

    from .layout import JPEG_QUALITY
    from .parameters import NOISE_SIGMA_RANGE

    key = (STREAM_DETECTION_PROBE, person_stream_key(person_id), index, attempt)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))
    clean = np.rint(neutral).astype(np.uint8)
    probes = [clean]
    height, width = clean.shape[:2]
    for _ in range(DETECTION_PROBES):
        shift = np.array([[1.0, 0.0, rng.uniform(-0.5, 0.5)], [0.0, 1.0, rng.uniform(-0.5, 0.5)]])
        moved = cv2.warpAffine(neutral.astype(np.float32), shift, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        noisy = np.clip(moved + rng.normal(0.0, NOISE_SIGMA_RANGE[1], moved.shape), 0.0, 255.0)
        encoded = cv2.imencode(".jpg", np.rint(noisy).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1]
        probes.append(cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED))
    return probes


def _detectable_sessions(face: PersonFace, settings: PeopleSetSettings) -> tuple[list, dict[int, RenderedSubject]]:
    """The person's sessions, each rendered and checked with the package's face detector.

    dlib's HOG detector is brittle on some faces (a three-quarter view, a mirrored or rolled
    copy): a session whose neutral image it misses would give clips that `prepare` cannot
    align. Such a session is replaced by the next draw of its own stream (deterministic),
    and the replacement count is recorded; a person with no detectable draw is an error.
    """
    from ...errors import FaceNotFoundError
    from ...face import detect_face
    from ...frames import to_gray_float

    sessions, rendered = [], {}
    for index in range(SESSIONS_PER_PERSON):
        for attempt in range(MAX_SESSION_ATTEMPTS):
            session = draw_session(settings.seed, face.person.id, index, attempt)
            subject = render_subject(face.face, session, settings.size, settings.grayscale)
            try:
                for probe in _detection_probes(subject.neutral, settings.seed, face.person.id, index, attempt):
                    detect_face(to_gray_float(probe))
            except FaceNotFoundError:
                continue
            sessions.append(replace(session, replacement_draws=attempt))
            rendered[index] = subject
            break
        else:
            raise DatasetError(
                f"SynthME 2.0: the face of {face.person.id!r} is not found by the face detector in any of "
                f"{MAX_SESSION_ATTEMPTS} draws of its session {index}; this person cannot be rendered here."
            )
    return sessions, rendered


def render_people_set(frames_root: Path, people: tuple[Person, ...], settings: PeopleSetSettings, progress: bool = True) -> PeopleSet:
    """Render every clip of a 2.0 set into ``frames_root/subNN/EPxx_01/img1.jpg...``.

    Args:
        frames_root: the (existing, empty) ``CASME2_RAW_selected`` folder.
        people: the people in subject order.
        settings: the validated arguments.
        progress: show a tqdm progress bar.

    Returns:
        :class:`PeopleSet` with rows and records sorted by (subject, clip folder).

    Raises:
        DatasetError: a person's package or file is missing or its face is not found.
        LandmarkModelError: dlib or its landmark model is missing.
    """
    from tqdm.auto import tqdm

    # Load every face first, so a missing package fails before any clip is rendered.
    faces = [load_person_face(person) for person in people]
    total = len(people) * len(settings.class_names) * settings.samples_per_class
    rows: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    subjects: list[dict[str, Any]] = []
    with tqdm(total=total, desc="SynthME 2.0", unit="clip", disable=not progress) as bar:
        for number, face in enumerate(faces, start=1):
            person_id = face.person.id
            sessions, rendered = _detectable_sessions(face, settings)
            # Shuffle clip numbers per person so the folder name carries no class information.
            order_key = (STREAM_PERSON_ORDER, person_stream_key(person_id))
            order_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(settings.seed, spawn_key=order_key)))
            pairs = [(c, r) for c in settings.class_names for r in range(settings.samples_per_class)]
            permutation = order_rng.permutation(len(pairs))
            subject_dir = frames_root / f"sub{number:02d}"
            subject_dir.mkdir()
            for episode, index in enumerate(permutation, start=1):
                class_name, repeat = pairs[int(index)]
                filename = f"EP{episode:02d}_01"
                sample = draw_person_sample(
                    settings.seed, number, person_id, class_name, repeat, filename, settings.frames_per_clip,
                    settings.amplitude_range, settings.masked_fraction, len(sessions),
                )
                clip_dir = subject_dir / filename
                clip_dir.mkdir()
                for t, image in enumerate(render_person_clip(rendered[sample.session], sample, settings.seed), start=1):
                    write_jpeg(clip_dir / f"img{t}.jpg", image)
                rows.append({
                    "Subject": number,
                    "Filename": filename,
                    "OnsetFrame": sample.onset_frame,
                    "ApexFrame": sample.apex_frame,
                    "OffsetFrame": sample.offset_frame,
                    "Action Units": "+".join(str(a) for a in sample.aus + sample.offset_aus),
                    "Estimated Emotion": sample.emotion,
                })
                samples.append(asdict(sample))
                bar.update(1)
            subjects.append(_subject_record(number, face, sessions, rendered))

    files: dict[str, dict[str, Any]] = {}
    for face in faces:
        for record in _photograph_records(face):
            name = f"{record['package']}/{record['file']}"
            entry = files.setdefault(name, {
                "name": name, "package": record["package"], "package_version": record["package_version"],
                "file": record["file"], "sha256": record["sha256"], "licence": record["licence"], "people": [],
            })
            if record["person"] not in entry["people"]:
                entry["people"].append(record["person"])
    rows.sort(key=lambda r: (r["Subject"], r["Filename"]))
    samples.sort(key=lambda s: (s["subject"], s["filename"]))
    return PeopleSet(rows=rows, samples=samples, subjects=subjects, face_sources=list(files.values()))


__all__ = ["PeopleSet", "PeopleSetSettings", "render_people_set"]
