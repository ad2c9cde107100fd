"""Shared fixtures: real GLUE rows and tokenizer files, tiny teachers, isolated user folders.

Tests never download: the Hub is switched off here. Real data comes from the folder named by
LAMPREIA_TEST_DATA (with glue/<TASK>/{train,dev}.tsv and tokenizers/); tests that need it skip
with a reason when it is unset.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# An empty Hugging Face cache, so that a model cached on the developer's machine cannot change
# what the offline checks report. Set before any test imports huggingface_hub, which reads it once.
_EMPTY_HF_HOME = tempfile.mkdtemp(prefix="lampreia-tests-hf-")
atexit.register(shutil.rmtree, _EMPTY_HF_HOME, ignore_errors=True)
os.environ["HF_HOME"] = _EMPTY_HF_HOME
os.environ.pop("HF_HUB_CACHE", None)
os.environ.pop("HF_DATASETS_CACHE", None)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATA_HINT = (
    "set LAMPREIA_TEST_DATA to a folder holding glue/<TASK>/{train,dev}.tsv (the glue_data layout) "
    "and tokenizers/{gpt2,roberta-base,distilbert-base-uncased}/ to run this test"
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    value = os.environ.get("LAMPREIA_TEST_DATA")
    if not value:
        pytest.skip(DATA_HINT)
    path = Path(value)
    if not (path / "glue").is_dir() or not (path / "tokenizers").is_dir():
        pytest.skip(f"LAMPREIA_TEST_DATA={value} has no glue/ or tokenizers/ folder; {DATA_HINT}")
    return path


@pytest.fixture(scope="session")
def glue_dir(shared_data: Path) -> Path:
    return shared_data / "glue"


@pytest.fixture(scope="session")
def tokenizer_files(shared_data: Path) -> Path:
    return shared_data / "tokenizers"


@pytest.fixture(scope="session", autouse=True)
def session_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One teacher-embedding cache for the session: entries are content-addressed, so sharing is safe."""
    path = tmp_path_factory.mktemp("lampreia-cache")
    os.environ["LAMPREIA_CACHE_DIR"] = str(path)
    return path


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own run database folder, never the user's."""
    path = tmp_path / "lampreia-data"
    monkeypatch.setenv("LAMPREIA_DATA_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def gpt2_tokenizer_dir(tokenizer_files: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real GPT-2 BPE files saved as a loadable tokenizer folder."""
    from tests.tiny_models import save_tokenizer

    return save_tokenizer("gpt2", tokenizer_files, tmp_path_factory.mktemp("gpt2-tokenizer"))


@pytest.fixture(scope="session")
def tiny_teachers(tokenizer_files: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random GPT-2, DistilBERT and RoBERTa folders with the real tokenizer files."""
    from tests.tiny_models import build_tiny_teacher

    root = tmp_path_factory.mktemp("tiny-teachers")
    return {kind: build_tiny_teacher(kind, tokenizer_files, root / f"tiny-{kind}") for kind in ("gpt2", "distilbert", "roberta")}


@pytest.fixture
def read_only_mount(tmp_path: Path):
    """A run database with one run ("on a share") in a read-only bind mount; skipped where mounting is not allowed.

    A real mount, because the tests run as root here, and root may write a file whatever its mode.
    """
    import shutil
    import subprocess

    from engine.run_store import RunStore

    source, mount = tmp_path / "source", tmp_path / "mount"
    source.mkdir()
    mount.mkdir()
    store = RunStore(source / "runs.sqlite3")
    config = {"task": "sst2", "distillation": {"teachers": ["minilm"]}, "student": {"d_model": 64, "n_layers": 2, "n_heads": 4}}
    store.create_run(config, name="on a share", device="cpu", versions={})
    store.close()
    mount_tool = shutil.which("mount")
    if mount_tool is None or os.geteuid() != 0:
        pytest.skip("needs root and mount(8) to make a read-only bind mount")
    bound = subprocess.run([mount_tool, "--bind", str(source), str(mount)], capture_output=True)
    if bound.returncode != 0:
        pytest.skip(f"bind mount not allowed here: {bound.stderr.decode().strip()}")
    try:
        remounted = subprocess.run([mount_tool, "-o", "remount,bind,ro", str(mount)], capture_output=True)
        if remounted.returncode != 0:
            pytest.skip(f"read-only remount not allowed here: {remounted.stderr.decode().strip()}")
        yield mount / "runs.sqlite3"
    finally:
        # Lazy, because the CLI leaves its pooled connections to the database open until exit.
        subprocess.run(["umount", "--lazy", str(mount)], capture_output=True)
