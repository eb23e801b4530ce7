"""fmanet-hf export / push: a tiny LOSO run -> a Hub-ready folder -> (mocked) upload.

Acceptance checks: in a fresh process with HF_HUB_OFFLINE=1, the exported folder (and each
exported fold) reproduces the run's predictions exactly, through the package and through
the remote code with the package made unimportable; the card's YAML parses with
huggingface_hub.ModelCard and its metrics equal results.json's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from fmanet_hf import CheckpointError, FMANetImageProcessor
from fmanet_hf.cli import main as cli_main

from tests.helpers.tiny import make_prepared_dataset, tiny_config_kwargs  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished LOSO run (3 subjects x 3 samples, 2 epochs) with fold models and a final model."""
    from accelerate import Accelerator

    from fmanet_hf.training.engine import predict_probabilities
    from fmanet_hf.training.loso import run_loso
    from fmanet_hf.training.schedule import TrainingSchedule

    base = tmp_path_factory.mktemp("export")
    dataset = make_prepared_dataset(subjects=3, per_subject=3, image_size=32, seed=5, dataset_names=["synthme"] * 3)
    processor = FMANetImageProcessor(size={"height": 32, "width": 32}, flow_method="dis")
    results = run_loso(
        dataset,
        model_config=tiny_config_kwargs(32),
        out_dir=base / "run",
        schedule=TrainingSchedule(epochs=2, batch_size=4, learning_rate=3e-3),
        seed=1,
        save_fold_models=True,
        train_final_model=True,
        processor=processor,
        progress=False,
        accelerator=Accelerator(cpu=True),
    )
    # The inputs, and what the final model predicts on them in THIS process, for the fresh processes to match.
    pixels = torch.stack([torch.as_tensor(np.asarray(p)) for p in dataset["pixel_values"]]).float()
    ids = list(dataset.with_format(None)["sample_id"])
    from fmanet_hf.pretrained import load_pretrained_model

    final = load_pretrained_model(base / "run" / "final_model")
    np.save(base / "pixels.npy", pixels.numpy())
    (base / "sample_ids.json").write_text(json.dumps(ids))
    np.save(base / "final_probabilities.npy", predict_probabilities(final, pixels))
    return base, results


@pytest.fixture(scope="module")
def exported(tiny_run):
    from fmanet_hf.hub.export import export_run

    base, results = tiny_run
    info = export_run(base / "run", base / "out", include_folds=True, repo_id="someone/fmanet-tiny-synthme")
    return base / "out", info, results


def exported_run_dir(out):
    """The LOSO run folder an export was made from (``tiny_run``'s ``run/``, beside ``out``)."""
    return out.parent / "run"


def test_export_folder_contents(exported):
    out, info, results = exported
    assert info.dataset == "synthme" and info.folds == ["s1", "s2", "s3"]
    for name in ("model.safetensors", "config.json", "preprocessor_config.json", "README.md", "configuration_fmanet.py",
                 "modeling_fmanet.py", "image_processing_fmanet.py", "errors.py", "frames.py", "face.py", "flow.py", "mmcof.py",
                 "loso_results.json", "loso_predictions.jsonl", "training_info.json", "fmanet_export.json"):
        assert (out / name).is_file(), name
    for subject in ("s1", "s2", "s3"):
        assert (out / "folds" / subject / "model.safetensors").is_file()
        assert (out / "folds" / subject / "preprocessor_config.json").is_file()
    # The weights are the run's own: the final model at the top, each fold's model in its folder.
    from safetensors.torch import load_file

    run = exported_run_dir(out)
    for exported_weights, run_weights in [(out, run / "final_model")] + [(out / "folds" / s, run / "folds" / s) for s in ("s1", "s2", "s3")]:
        got, expected = load_file(exported_weights / "model.safetensors"), load_file(run_weights / "model.safetensors")
        assert got.keys() == expected.keys(), exported_weights
        assert all(torch.equal(got[key], expected[key]) for key in got), f"{exported_weights} holds other weights than {run_weights}"
    fold_weights = [load_file(out / "folds" / s / "model.safetensors")["classifier.weight"] for s in ("s1", "s2", "s3")]
    assert not torch.equal(fold_weights[0], fold_weights[1]), "each fold folder holds its own fold's model"
    assert not [p for p in out.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl")]
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive", "2": "surprise"}
    assert config["auto_map"]["AutoModelForImageClassification"] == "modeling_fmanet.FMANetForImageClassification"
    assert config["auto_map"]["AutoModel"] == "modeling_fmanet.FMANetModel"
    assert config["custom_pipelines"]["micro-expression-recognition"]["impl"] == "pipeline_fmanet.MicroExpressionRecognitionPipeline"
    assert (out / "pipeline_fmanet.py").is_file() and (out / "video.py").is_file()
    assert json.loads((out / "preprocessor_config.json").read_text())["flow_method"] == "dis"
    assert json.loads((out / "loso_results.json").read_text()) == results
    provenance = json.loads((out / "fmanet_export.json").read_text())
    assert provenance["folds"] == ["s1", "s2", "s3"] and provenance["dataset_template"] == "synthme"
    # Every file but the hidden marker that lets a later --overwrite replace the folder.
    assert (out / ".fmanet-hf-output").is_file()
    assert info.files == sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != ".fmanet-hf-output")


def test_card_parses_and_its_metrics_are_the_results(exported):
    from huggingface_hub import ModelCard

    out, _, results = exported
    text = (out / "README.md").read_text()
    card = ModelCard.load(out / "README.md")
    values = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert values == {"accuracy": results["accuracy"], "f1": results["uf1"], "recall": results["uar"]}
    assert {r.dataset_split for r in card.data.eval_results} == {"loso-pooled"}
    assert card.data.model_name == "fmanet-tiny-synthme" and card.data.license == "apache-2.0"
    assert card.data.pipeline_tag == "image-classification" and "custom_code" in card.data.tags
    assert "never seen a real micro-expression" in text and "Not a lie detector" in text
    assert "pooled LOSO, final epoch" in text and "someone/fmanet-tiny-synthme" in text
    assert f"{results['uf1']:.4f}" in text and "${" not in text
    # The reconstructed command states the run's real schedule.
    # (DIS is the default flow since processor format 2, so no --flow-method.)
    assert "fmanet-hf loso --dataset synthme --root DATA_DIR --size 32" in text
    assert "--epochs 2 --batch-size 4 --lr 0.003" in text and "--set=hidden_sizes=[8,16]" in text


def _fresh_process(script: str, tmp: Path) -> subprocess.CompletedProcess:
    path = tmp / "check.py"
    path.write_text(textwrap.dedent(script))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1", "HF_HOME": str(tmp / "hf-home")}
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True, env=env, timeout=600, cwd=tmp)


_CHECK = """
import json, sys
import numpy as np, torch
{setup}
out, base = sys.argv[1] if len(sys.argv) > 1 else {out!r}, {base!r}
pixels = torch.from_numpy(np.load(base + "/pixels.npy"))
ids = json.load(open(base + "/sample_ids.json"))

def probabilities(model, rows):
    with torch.no_grad():  # the run's predict_probabilities: one batch, softmax in float32, then float64
        return torch.softmax(model(pixel_values=pixels[rows]).logits.float(), dim=-1).double().numpy()

final = load(out, None)
assert np.array_equal(probabilities(final, list(range(len(ids)))), np.load(base + "/final_probabilities.npy")), "final model"
lines = [json.loads(l) for l in open(out + "/loso_predictions.jsonl")]
checked = 0
for subject in sorted({{l["subject"] for l in lines}}):
    rows = [l for l in lines if l["subject"] == subject]
    got = probabilities(load(out, "folds/" + subject), [ids.index(l["sample_id"]) for l in rows])
    want = np.array([[l["probabilities"][n] for n in ("negative", "positive", "surprise")] for l in rows])
    assert np.array_equal(got, want), subject
    checked += len(rows)
print("OK", checked, {marker!r})
"""


@pytest.mark.slow
def test_fresh_process_reproduces_predictions_through_the_package(exported, tiny_run):
    out, _, _ = exported
    base, _ = tiny_run
    setup = """
from fmanet_hf.pretrained import load_pretrained_model
def load(path, subfolder):
    return load_pretrained_model(path, subfolder=subfolder).eval()
"""
    result = _fresh_process(_CHECK.format(setup=setup, out=str(out), base=str(base), marker="package"), base)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[:2] == ["OK", "9"]


@pytest.mark.slow
def test_fresh_process_reproduces_predictions_through_remote_code(exported, tiny_run):
    out, _, _ = exported
    base, _ = tiny_run
    setup = """
sys.modules["fmanet_hf"] = None  # any import of the package now fails
from transformers import AutoImageProcessor, AutoModelForImageClassification
def load(path, subfolder):
    kwargs = {"subfolder": subfolder} if subfolder else {}
    model = AutoModelForImageClassification.from_pretrained(path, trust_remote_code=True, use_safetensors=True, **kwargs).eval()
    assert "fmanet_hf" not in type(model).__module__.split(".")[0], type(model).__module__
    return model
processor = AutoImageProcessor.from_pretrained(OUT, trust_remote_code=True)
assert type(processor).__module__.split(".")[0] != "fmanet_hf"
assert processor.flow_method == "dis" and processor.size == {"height": 32, "width": 32}
""".replace("OUT", repr(str(out)))
    result = _fresh_process(_CHECK.format(setup=setup, out=str(out), base=str(base), marker="remote"), base)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[:2] == ["OK", "9"]


_HUB_USER_SCRIPT = """
import importlib.abc, json, sys

class BlockPackage(importlib.abc.MetaPathFinder):
    # A Hub user's machine: fmanet-hf is not installed, so only the folder's remote code can run.
    def find_spec(self, name, path=None, target=None):
        if name == "fmanet_hf" or name.startswith("fmanet_hf."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, BlockPackage())
import numpy as np
from PIL import Image
from transformers import AutoImageProcessor, AutoModel, pipeline

folder = sys.argv[1]
# The test frames are random textures, not faces: the folder's processor without face alignment.
processor = AutoImageProcessor.from_pretrained(folder, trust_remote_code=True, align_faces=False)
classify = pipeline("micro-expression-recognition", model=folder, image_processor=processor, trust_remote_code=True, device="cpu")
assert type(classify).__module__.startswith("transformers_modules"), type(classify).__module__
assert "fmanet_hf" not in sys.modules
rng = np.random.default_rng(0)
onset = (rng.random((64, 64)) * 255).astype(np.uint8)
apex = np.roll(onset, 1, axis=1)
offset = onset.copy()
single = classify((Image.fromarray(onset), Image.fromarray(apex), Image.fromarray(offset)))
batch = list(classify(((onset, apex, offset) for _ in range(3)), batch_size=2))
features = AutoModel.from_pretrained(folder, trust_remote_code=True)
assert type(features).__name__ == "FMANetModel" and type(features).__module__.startswith("transformers_modules")
print(json.dumps({"single": single, "batch": batch}))
"""


@pytest.mark.slow
def test_hub_user_without_the_package_runs_the_pipeline_of_an_exported_folder(exported, tiny_run, tmp_path):
    out, _, _ = exported
    result = subprocess.run(
        [sys.executable, "-c", _HUB_USER_SCRIPT, str(out)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": ""},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    labels = {"negative", "positive", "surprise"}
    assert {r["label"] for r in got["single"]} == labels
    assert sum(r["score"] for r in got["single"]) == pytest.approx(1.0, abs=1e-6)
    assert len(got["batch"]) == 3  # batches of 2 and 1, each sample the same triplet as `single`
    for result in got["batch"]:
        assert [r["label"] for r in result] == [r["label"] for r in got["single"]]
        assert [r["score"] for r in result] == pytest.approx([r["score"] for r in got["single"]], abs=1e-5)
    # The package's own pipeline on the same folder (no trust_remote_code needed with the package) agrees.
    from PIL import Image
    from transformers import pipeline

    rng = np.random.default_rng(0)
    onset = (rng.random((64, 64)) * 255).astype(np.uint8)
    processor = FMANetImageProcessor.from_pretrained(out, align_faces=False)
    with_package = pipeline("micro-expression-recognition", model=str(out), image_processor=processor, device="cpu")
    expected = with_package((Image.fromarray(onset), Image.fromarray(np.roll(onset, 1, axis=1)), Image.fromarray(onset.copy())))
    assert type(with_package).__module__ == "fmanet_hf.pipeline_fmanet"
    assert [r["label"] for r in got["single"]] == [r["label"] for r in expected]
    assert [r["score"] for r in got["single"]] == pytest.approx([r["score"] for r in expected], abs=1e-6)


def test_export_refusals(tiny_run, tmp_path):
    import shutil

    from fmanet_hf.hub.export import export_run

    base, _ = tiny_run
    with pytest.raises(CheckpointError, match="already exists"):
        export_run(base / "run", base / "run" / "..", dataset="synthme")
    unfinished = tmp_path / "unfinished"
    shutil.copytree(base / "run", unfinished)
    (unfinished / "results.json").unlink()
    with pytest.raises(CheckpointError, match="has not finished"):
        export_run(unfinished, tmp_path / "a")
    no_final = tmp_path / "no_final"
    shutil.copytree(base / "run", no_final, ignore=shutil.ignore_patterns("final_model"))
    with pytest.raises(CheckpointError, match="--train-final-model"):
        export_run(no_final, tmp_path / "b")
    no_folds = tmp_path / "no_folds"
    shutil.copytree(base / "run", no_folds, ignore=lambda d, names: [n for n in names if n.startswith("s") and "." not in n and d.endswith("folds")])
    with pytest.raises(CheckpointError, match="--save-fold-models"):
        export_run(no_folds, tmp_path / "c", include_folds=True)
    with pytest.raises(CheckpointError, match="trained model, not a LOSO run"):
        export_run(base / "run" / "final_model", tmp_path / "d")
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


def test_dataset_detection_and_templates(tmp_path, monkeypatch):
    from fmanet_hf.hub import cards
    from fmanet_hf.hub.cards import CARD_DATASETS, ModelCardError, detect_card_dataset, find_template_dir

    assert detect_card_dataset({"by_dataset": {"casme2": {}}}) == "casme2"
    assert detect_card_dataset({"by_dataset": {"smic_hs": {}}}) == "smic"
    assert detect_card_dataset({"by_dataset": {"casme2": {}, "samm": {}, "smic": {}}}) == "megc2019"
    with pytest.raises(ModelCardError, match="--dataset"):
        detect_card_dataset({"by_dataset": {"toy": {}}})
    folder = find_template_dir()
    assert folder == ROOT / "hub_cards"
    for name in (*CARD_DATASETS, "common"):
        assert (folder / f"{name}.md").is_file(), name
    # An installed wheel has no source tree: the error says where the templates are.
    monkeypatch.delenv("FMANET_HUB_CARDS", raising=False)
    monkeypatch.setattr(cards, "default_template_dir", lambda: None)
    with pytest.raises(ModelCardError, match="--template-dir"):
        find_template_dir(tmp_path)
    monkeypatch.setenv("FMANET_HUB_CARDS", str(folder))
    assert find_template_dir() == folder


@pytest.mark.parametrize("dataset", ["casme2", "samm", "smic", "mmew", "casme3", "megc2019", "synthme"])
def test_every_template_renders_a_valid_card(exported, dataset, tmp_path):
    """Each dataset's card renders from the same run (as if it were that dataset's) and checks out."""
    from fmanet_hf.hub.cards import CardInputs, card_context, check_model_card, render_model_card

    out, _, results = exported
    results = dict(results)
    if dataset == "megc2019":  # a composite: per-dataset model-index entries too
        part = {k: results[k] for k in ("accuracy", "uf1", "uar", "num_samples")}
        results["by_dataset"] = {"casme2": part, "samm": part, "smic": part}
    inputs = CardInputs(
        results=results, run_config=json.loads((out.parent / "run" / "run_config.json").read_text()),
        processor_settings=FMANetImageProcessor().output_settings(), model_config=json.loads((out / "config.json").read_text()),
        num_parameters=1234, final_model_info=None, dataset_key=dataset, model_name=f"fmanet-{dataset}", repo_id=None,
        loso_command="fmanet-hf loso ...", export_command="fmanet-hf export ...", results_sha256="0" * 64, includes_folds=False,
    )
    text = render_model_card(dataset, card_context(inputs), results, model_name=f"fmanet-{dataset}")
    card = check_model_card(text, results)
    assert "Not a lie detector" in text and "Licence" in text and "${" not in text
    if dataset == "synthme":
        assert card.data.license == "apache-2.0"
    else:
        assert card.data.license == "other" and "non-commercial research" in text
    if dataset == "megc2019":
        assert len(card.data.eval_results) == 12 and "Each dataset's subset" in text


def test_card_check_catches_a_changed_number(exported):
    from fmanet_hf.hub.cards import ModelCardError, check_model_card

    out, _, results = exported
    text = (out / "README.md").read_text()
    tampered = text.replace(f"value: {results['uf1']!r}", f"value: {results['uf1'] + 0.01!r}", 1)
    assert tampered != text
    with pytest.raises(ModelCardError, match="differs from results.json's uf1"):
        check_model_card(tampered, results)


# ---------------------------------------------------------------------------------- push
class FakeHfApi:
    """Records the HfApi calls push makes; can fail like an offline Hub."""

    def __init__(self, fail: Exception | None = None):
        self.calls = []
        self.fail = fail

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        if self.fail:
            raise self.fail
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))

        class Commit:
            commit_url = f"https://huggingface.co/{kwargs['repo_id']}/commit/abc"

        return Commit()


def test_push_creates_repo_and_uploads_everything(exported):
    from fmanet_hf.hub.push import plan_upload, push_folder

    out, info, _ = exported
    api = FakeHfApi()
    result = push_folder(out, "someone/fmanet-tiny", private=True, api=api)
    assert api.calls[0] == ("create_repo", "someone/fmanet-tiny", {"repo_type": "model", "private": True, "exist_ok": True})
    upload = api.calls[1][1]
    assert upload["repo_id"] == "someone/fmanet-tiny" and upload["folder_path"] == str(out) and upload["repo_type"] == "model"
    assert sorted(upload["allow_patterns"]) == info.files == [i.path_in_repo for i in plan_upload(out)]
    assert result.commit_url.endswith("/commit/abc")
    sizes = {i.path_in_repo: i.size for i in result.items}
    assert sizes["model.safetensors"] == (out / "model.safetensors").stat().st_size


def test_push_dry_run_contacts_nothing_and_refuses_bad_folders(exported, tmp_path, capsys):
    import shutil

    from fmanet_hf.hub.push import HubUploadError, push_folder

    out, _, _ = exported
    api = FakeHfApi()
    assert push_folder(out, "someone/x", dry_run=True, api=api).dry_run and api.calls == []
    assert cli_main(["push", str(out), "--repo-id", "someone/x", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "model.safetensors" in printed and " KB" in printed and "total" in printed and "Dry run: nothing was uploaded" in printed
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    torch.save({"w": torch.zeros(1)}, copy / "extra.pt")
    with pytest.raises(CheckpointError, match="extra.pt is a pickle-based file"):
        push_folder(copy, "someone/x", dry_run=True)
    (copy / "extra.pt").unlink()
    (copy / "README.md").unlink()
    with pytest.raises(CheckpointError, match="lacks README.md"):
        push_folder(copy, "someone/x", dry_run=True)
    with pytest.raises(CheckpointError, match="user/name"):
        push_folder(out, "no-slash", dry_run=True)

    class OfflineModeIsEnabled(Exception):
        pass

    with pytest.raises(HubUploadError, match="HF_HUB_OFFLINE is set"):
        push_folder(out, "someone/x", api=FakeHfApi(fail=OfflineModeIsEnabled("offline")))
    assert cli_main(["push", str(copy), "--repo-id", "someone/x"]) == 2  # one-line error, exit status 2


def test_export_command_line(tiny_run, tmp_path, capsys):
    base, results = tiny_run
    status = cli_main(["export", str(base / "run"), str(tmp_path / "cli-out"), "--dataset", "synthme", "--model-name", "tiny"])
    assert status == 0
    printed = capsys.readouterr().out
    assert "README.md" in printed and f"uf1 {results['uf1']:.4f}" in printed
    assert "fmanet-hf export RUN_DIR OUT_DIR --dataset synthme --model-name tiny" in (tmp_path / "cli-out" / "README.md").read_text()
    assert cli_main(["export", str(base / "run"), str(tmp_path / "cli-out")]) == 2  # exists: refused


def test_bundled_checkpoint_is_an_export_of_a_recorded_run():
    """The shipped default model: < 10 MB, safetensors, a card whose numbers are its results file's."""
    from huggingface_hub import ModelCard

    from fmanet_hf.pretrained import BUNDLED_MODEL_DIR, bundled_model_path

    if bundled_model_path() is None:
        pytest.skip("this install has no bundled checkpoint")
    size = sum(p.stat().st_size for p in BUNDLED_MODEL_DIR.rglob("*") if p.is_file())
    assert size < 10_000_000
    results = json.loads((BUNDLED_MODEL_DIR / "loso_results.json").read_text())
    card = ModelCard.load(BUNDLED_MODEL_DIR / "README.md")
    values = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert values == {"accuracy": results["accuracy"], "f1": results["uf1"], "recall": results["uar"]}
    assert "never seen a real micro-expression" in card.text
    # SynthME 2.0's LOSO group: 10 subjects (4 real people, 6 morphs), 8 clips per class each.
    assert results["num_samples"] == 240 and results["num_folds"] == 10
    assert not [p for p in BUNDLED_MODEL_DIR.rglob("*") if p.suffix in (".bin", ".pt", ".pth")]
    # Its numbers stand beside the baselines on the same data, over seeds, from the committed file.
    evidence = json.loads((BUNDLED_MODEL_DIR / "evidence.json").read_text())
    committed = json.loads((Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "synthme2-evidence.json").read_text())
    assert evidence["variants"] == committed["variants"]
    # The bundled model is the final model of the seed-0 run started from SynthME pretraining.
    pretrained_run = evidence["extra_runs"]["init_from_pretrained"]["uf1"]["per_seed"][evidence["seeds"].index(0)]
    assert results["uf1"] == pytest.approx(pretrained_run)
    assert "--init-from PRETRAINED_DIR" in card.text and "einstein" in card.text
    for row in ("baseline: logistic regression on fixed MM-COF", "baseline: fixed MM-COF into the same CNN", "seeds 0, 1, 2"):
        assert row in card.text
    assert "synth --generator 2.0 --people loso" in card.text


def test_bundled_checkpoint_remote_code_matches_the_package():
    """The bundled folder's remote-code files are the package's own (a change to the model must be re-copied)."""
    from fmanet_hf.pretrained import BUNDLED_MODEL_DIR, bundled_model_path

    if bundled_model_path() is None:
        pytest.skip("this install has no bundled checkpoint")
    package = BUNDLED_MODEL_DIR.parents[1]
    copies = sorted(p.name for p in BUNDLED_MODEL_DIR.glob("*.py"))
    assert "modeling_fmanet.py" in copies and "image_processing_fmanet.py" in copies
    stale = [name for name in copies if (BUNDLED_MODEL_DIR / name).read_bytes() != (package / name).read_bytes()]
    assert stale == [], f"re-copy {stale} from src/fmanet_hf/ into {BUNDLED_MODEL_DIR}"


def test_card_command_names_opencv_tvl1_params_with_the_flag():
    """A run prepared with OpenCV's own TV-L1 parameters (an earlier bundled model's) is reproduced
    with --flow-params opencv; other non-default flow settings need the card's processor."""
    from fmanet_hf.flow import OPENCV_TVL1_PARAMS
    from fmanet_hf.hub.export import reproduction_commands
    from fmanet_hf.image_processing_fmanet import FMANetImageProcessor

    run_config = {"checked": {"schedule": {"epochs": 15, "batch_size": 16}, "seed": 0, "model_config": {}}}
    results = {"settings": {"device": "cpu"}}
    opencv = FMANetImageProcessor(flow_method="tvl1", flow_params=OPENCV_TVL1_PARAMS).output_settings()
    command = reproduction_commands(run_config, results, opencv, "synthme", None)
    assert "--flow-method tvl1 --flow-params opencv" in command and "PROCESSOR_DIR" not in command
    default = reproduction_commands(run_config, results, FMANetImageProcessor().output_settings(), "synthme", None)
    assert "--flow-params" not in default and "PROCESSOR_DIR" not in default
    other = FMANetImageProcessor(flow_method="tvl1", flow_params={"nscales": 4}).output_settings()
    assert "--processor PROCESSOR_DIR" in reproduction_commands(run_config, results, other, "synthme", None)
    # Fold workers change a fold's thread count, hence its float result: the command names them.
    workers = {"settings": {"device": "cpu", "fold_workers": 2}}
    assert "--fold-workers 2" in reproduction_commands(run_config, workers, opencv, "synthme", None)
    assert "--fold-workers" not in command


def test_card_command_names_the_face_backend_and_old_settings_mean_dlib():
    from fmanet_hf.hub.export import reproduction_commands
    from fmanet_hf.image_processing_fmanet import FMANetImageProcessor

    run_config = {"checked": {"schedule": {"epochs": 15}, "seed": 0, "model_config": {}}}
    results = {"settings": {"device": "cpu"}}
    mediapipe = FMANetImageProcessor(face_backend="mediapipe").output_settings()
    command = reproduction_commands(run_config, results, mediapipe, "synthme", None)
    assert "--face-backend mediapipe" in command and "PROCESSOR_DIR" not in command
    # A run recorded before the setting existed has no key: it was aligned with dlib.
    old = {k: v for k, v in FMANetImageProcessor().output_settings().items() if k != "face_backend"}
    command = reproduction_commands(run_config, results, old, "synthme", None)
    assert "--face-backend" not in command and "PROCESSOR_DIR" not in command


def test_card_commands_rebuild_a_synthme_2_run_with_its_recipe_and_starting_weights(tmp_path):
    """The card's commands regenerate SynthME 2.0 people and name the recipe and --init-from."""
    from fmanet_hf.hub.export import reproduction_commands
    from fmanet_hf.image_processing_fmanet import FMANetImageProcessor

    (tmp_path / "synthme_manifest.json").write_text(json.dumps({
        "generator_version": "2.0.0", "seed": 0,
        "arguments": {"people_group": "loso", "samples_per_class": 8, "frames_per_clip": 11},
        "subjects": [{"person": "bb-left"}],
    }))
    run_config = {"checked": {
        "schedule": {"epochs": 20, "batch_size": 16, "augmentation": "flow", "ema_decay": 0.99},
        "seed": 1, "model_config": {}, "init_from": {"path": "/x", "sha256": "ab" * 32},
    }}
    lines = reproduction_commands(run_config, {"settings": {"device": "cpu"}}, FMANetImageProcessor().output_settings(),
                                  "synthme", tmp_path).splitlines()
    assert lines[0].startswith("fmanet-hf synth --generator 2.0 --people loso --out DATA_DIR --samples-per-class 8 ")
    assert "--seed 0" in lines[0]
    loso = lines[1]
    assert loso.startswith("fmanet-hf loso --dataset synthme")
    for part in ("--epochs 20", "--augment flow", "--ema-decay 0.99", "--init-from PRETRAINED_DIR", "--seed 1"):
        assert part in loso
    assert lines[2].startswith("# PRETRAINED_DIR") and "ab" * 32 in lines[2]


def test_cards_switch_off_the_hub_widget_and_list_the_remote_code_dependencies(exported):
    # A Hub visitor's view of the card: metadata as the Hub reads it, and the install line to copy.
    import yaml
    from huggingface_hub import ModelCard

    out, _, _ = exported
    card = ModelCard.load(out / "README.md")
    assert card.data.to_dict()["inference"] is False  # the widget cannot send a frame triplet
    install = next(line for line in card.text.splitlines() if line.startswith("`pip install torch transformers"))
    for package in ("dlib-bin", "face-recognition-models", "opencv-contrib-python-headless"):
        assert package in install, package
    assert 'trust_remote_code=True)\nprint(classify(' in card.text  # the pipeline without the package
    # A user's own SynthME export is their model, not the package's test fixture.
    assert "package's tests" not in card.text and "for the tests" not in card.text.lower()
    for template in sorted((ROOT / "hub_cards").glob("*.md")):
        text = template.read_text(encoding="utf-8")
        if not text.startswith("---"):
            continue  # README.md and common.md are not cards
        assert yaml.safe_load(text.split("---")[1]).get("inference") is False, template.name
