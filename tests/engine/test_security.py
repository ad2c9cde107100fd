"""No pickle is read from disk, remote code needs consent, and user text cannot pick a path."""

import ast
from pathlib import Path

import pytest

import engine
from engine.paths import safe_file_name

ENGINE_DIR = Path(engine.__file__).parent


def _calls(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Name):
        return node.id
    return ""


def test_engine_never_unpickles():
    offenders = []
    for path in ENGINE_DIR.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        if "import pickle" in source or "from pickle" in source:
            offenders.append(f"{path.name}: imports pickle")
        for call in _calls(path):
            name = _dotted(call.func)
            if name.endswith("torch.load"):
                weights_only = [k for k in call.keywords if k.arg == "weights_only"]
                if not weights_only or getattr(weights_only[0].value, "value", None) is not True:
                    offenders.append(f"{path.name}:{call.lineno}: torch.load without weights_only=True")

    assert offenders == []


def test_trust_remote_code_is_only_passed_from_the_config():
    offenders = []
    for path in ENGINE_DIR.rglob("*.py"):
        for call in _calls(path):
            for keyword in call.keywords:
                if keyword.arg == "trust_remote_code" and isinstance(keyword.value, ast.Constant) and keyword.value.value is True:
                    offenders.append(f"{path.name}:{call.lineno}")

    assert offenders == []


def test_teacher_weights_are_loaded_from_safetensors_only():
    source = (ENGINE_DIR / "teachers.py").read_text(encoding="utf-8")

    assert "use_safetensors=True" in source


@pytest.mark.parametrize(
    "text,expected",
    [
        ("../../etc/passwd", "_.._etc_passwd"),
        ("/absolute/path", "_absolute_path"),
        ("run: sst2 (α=0.7)", "run__sst2____0.7_"),
        ("..", "run"),
        ("", "run"),
        ("C:\\Windows\\evil", "C__Windows_evil"),
        ("nul\x00byte", "nul_byte"),
    ],
)
def test_safe_file_name_stays_in_its_folder(text, expected, tmp_path):
    name = safe_file_name(text)

    assert name == expected
    assert (tmp_path / name).resolve().parent == tmp_path.resolve()
