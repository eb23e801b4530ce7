"""Measure `fmanet_hf.identity.landmark_geometry_distance` on the same vs different people.

Same person: every (onset, apex) and (onset, offset) pair of SynthME 2.0 clips rendered
from the real photographs of installed packages (expression, head motion, noise and
illumination as the generator draws them), and the onsets of two clips of one person in
different sessions. Different people: every pair of those people's photographs (their
face crops as SynthME frames them). Landmarks come from `fmanet_hf.face.detect_face`, as in
the pipeline. Writes the distributions and the gap to benchmarks/results/identity-threshold.json.

    python benchmarks/identity_threshold.py [--out benchmarks/results/identity-threshold.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def grey(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), dtype=np.float32)


def summary(values: list[float], threshold: float) -> dict:
    array = np.asarray(values)
    return {"n": len(values), "min": float(array.min()), "median": float(np.median(array)),
            "p95": float(np.percentile(array, 95)), "max": float(array.max()),
            "above_threshold": int((array > threshold).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "identity-threshold.json"))
    parser.add_argument("--landmarks", help="also save the landmarks (npz) to try other criteria offline")
    args = parser.parse_args()

    from fmanet_hf.data.synthetic import generate_synthme
    from fmanet_hf.data.synthetic.people import REAL_PEOPLE
    from fmanet_hf.data.synthetic.person_faces import load_person_face
    from fmanet_hf.errors import FMANetError
    from fmanet_hf.face import detect_face
    from fmanet_hf.identity import DIFFERENT_PERSON_THRESHOLD, landmark_geometry_distance

    people, photographs = [], {}
    for person in REAL_PEOPLE:
        try:
            rgb = load_person_face(person).face.rgb
            photographs[person.id] = detect_face(np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float32)).landmarks
            people.append(person.id)
        except (FMANetError, OSError, AttributeError) as error:
            print(f"skipped {person.id}: {error}")
    different = {f"{a} vs {b}": landmark_geometry_distance(photographs[a], photographs[b]) for a, b in itertools.combinations(people, 2)}

    same_within, same_across, clips = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        # einstein's 82 px face is too small for the renderer's detectability check (docs/synthme.md).
        rendered = [p for p in people if p != "einstein"]
        info = generate_synthme(Path(folder) / "set", generator_version="2.0", people=rendered, samples_per_class=2,
                                frames_per_clip=9, seed=0, progress=False)
        manifest = json.loads((info.root / "synthme_manifest.json").read_text())
        onsets: dict[str, list[np.ndarray]] = {}
        for sample in manifest["samples"]:
            clip = info.root / "CASME2_RAW_selected" / f"sub{int(sample['subject']):02d}" / sample["filename"]
            marks = []
            for key in ("onset_frame", "apex_frame", "offset_frame"):
                marks.append(detect_face(grey(clip / f"img{sample[key]}.jpg")).landmarks)
            same_within += [landmark_geometry_distance(marks[0], marks[1]), landmark_geometry_distance(marks[0], marks[2])]
            clips.append(np.stack(marks))
            onsets.setdefault(sample["subject"], []).append(marks[0])
        for marks in onsets.values():
            same_across += [landmark_geometry_distance(a, b) for a, b in itertools.combinations(marks, 2)]

    result = {
        "command": "python benchmarks/identity_threshold.py",
        "people": people,
        "threshold": DIFFERENT_PERSON_THRESHOLD,
        "same_person_within_clip": summary(same_within, DIFFERENT_PERSON_THRESHOLD),
        "same_person_across_clips": summary(same_across, DIFFERENT_PERSON_THRESHOLD),
        "different_people": summary(list(different.values()), DIFFERENT_PERSON_THRESHOLD),
        "different_people_pairs": {k: round(v, 4) for k, v in sorted(different.items(), key=lambda kv: kv[1])},
    }
    if args.landmarks:
        np.savez(args.landmarks, clips=np.stack(clips), photographs=np.stack([photographs[p] for p in people]))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "different_people_pairs"}, indent=2))


if __name__ == "__main__":
    main()
