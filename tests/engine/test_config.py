"""Run configuration: validation messages, JSON round trip, presets."""

import json

import pytest

from engine.config import SCHEMA_VERSION, DistillationConfig, RunConfig, StudentConfig, TrainingConfig, list_presets, load_preset
from engine.errors import ConfigError


def test_default_config_round_trips_through_json():
    config = RunConfig()

    assert RunConfig.from_json(config.to_json()) == config


def test_presets_load_and_round_trip():
    assert set(list_presets()) >= {"paper", "full", "offline-demo"}
    for name in list_presets():
        config = load_preset(name)
        assert RunConfig.from_dict(json.loads(config.to_json())) == config


def test_paper_preset_follows_the_published_protocol():
    config = load_preset("paper")

    assert config.distillation.teachers == ("gpt2", "distilbert", "roberta")
    assert (config.student.d_model, config.student.n_layers, config.student.n_heads) == (256, 4, 8)
    assert config.distillation.alpha == 0.7
    assert (config.data.train_limit, config.data.dev_limit) == (2000, 400)


def test_preset_name_is_forgiving_about_spaces_and_case():
    assert load_preset("Offline Demo") == load_preset("offline-demo")


@pytest.mark.parametrize(
    "overrides,field,fragment",
    [
        ({"student.n_heads": 3}, "student.n_heads", "does not divide d_model = 256"),
        ({"training.batch_size": 0}, "training.batch_size", "out of range"),
        ({"training.batch_size": -4}, "training.batch_size", "out of range"),
        ({"training.epochs": 0}, "training.epochs", "out of range"),
        ({"training.learning_rate": 0.0}, "training.learning_rate", "out of range"),
        ({"training.learning_rate": -1e-3}, "training.learning_rate", "out of range"),
        ({"distillation.alpha": 1.5}, "distillation.alpha", "out of range"),
        ({"distillation.alpha": -0.1}, "distillation.alpha", "out of range"),
        ({"student.mixer": "fourier"}, "student.mixer", "not allowed"),
        ({"student.embedding": "onehot"}, "student.embedding", "not allowed"),
        ({"training.device": "tpu"}, "training.device", "not a device"),
        ({"student.n_fft": 100}, "student.n_fft", "shorter than 2 × max_seq_len"),
        ({"training.epochs": 2.5}, "training.epochs", "not a whole number"),
        ({"training.epochs": "many"}, "training.epochs", "not a whole number"),
        ({"training.learning_rate": float("nan")}, "training.learning_rate", "not a finite number"),
        ({"distillation.teachers": []}, "distillation.teachers", "No teacher is chosen. Choose at least one teacher, such as minilm."),
        ({"distillation.teachers": ["minilm", " "]}, "distillation.teachers", "Teacher 2 of 2 is empty."),
        ({"training.attention_probe": "  "}, "training.attention_probe", "probe sentence is empty"),
        ({"distillation.teachers": ["minilm", "minilm"]}, "distillation.teachers", "twice"),
        ({"distillation.teachers": ["/models/bert", "/models/bert/"]}, "distillation.teachers", "'/models/bert' and '/models/bert/' name the same teacher"),
        ({"distillation.teachers": ["/models/./bert", "/models/bert"]}, "distillation.teachers", "name the same teacher"),
        ({"distillation.teachers": ["gpt2", "openai-community/gpt2"]}, "distillation.teachers", "name the same teacher"),
        ({"distillation.teachers": ["MiniLM", "minilm"]}, "distillation.teachers", "name the same teacher"),
        ({"distillation.teachers": ["minilm", "sentence-transformers/all-MiniLM-L6-v2"]}, "distillation.teachers", "name the same teacher"),
        ({"distillation.mask_fraction": 0.6, "distillation.replace_fraction": 0.5}, "distillation.replace_fraction", "below 1"),
    ],
)
def test_invalid_values_name_the_field(overrides, field, fragment):
    with pytest.raises(ConfigError) as caught:
        RunConfig().with_overrides(overrides)

    assert caught.value.field == field
    assert fragment in str(caught.value)


def test_fixed_weights_must_match_teacher_count():
    with pytest.raises(ConfigError) as caught:
        DistillationConfig(teachers=("gpt2", "roberta"), weighting="fixed", fixed_weights=(1.0,))

    assert "1 weight given for 2 teachers" in str(caught.value)
    assert "one weight per teacher" in str(caught.value)


def test_fixed_weights_all_zero_rejected():
    with pytest.raises(ConfigError, match="all zero"):
        DistillationConfig(teachers=("gpt2", "roberta"), weighting="fixed", fixed_weights=(0.0, 0.0))


def test_fixed_weights_are_normalised():
    config = DistillationConfig(teachers=("a", "b", "c"), weighting="fixed", fixed_weights=(1, 1, 2))

    assert config.normalized_fixed_weights == (0.25, 0.25, 0.5)


def test_unknown_task_lists_the_tasks():
    with pytest.raises(ConfigError) as caught:
        RunConfig(task="imdb")

    assert caught.value.field == "task"
    assert "sst2" in str(caught.value) and "wnli" in str(caught.value)


@pytest.mark.parametrize("spelling", ["SST-2", "sst_2", "Sst2", "STS-B"])
def test_task_spellings_are_normalised(spelling):
    assert RunConfig(task=spelling).task in ("sst2", "stsb")


def test_newer_schema_version_is_rejected_with_upgrade_hint():
    data = RunConfig().to_dict()
    data["schema_version"] = SCHEMA_VERSION + 1

    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict(data)

    assert "newer Lampreia" in str(caught.value)
    assert "upgrade" in str(caught.value)


def test_unknown_key_is_rejected():
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({"student": {"d_modle": 128}})

    assert caught.value.field == "student.d_modle"
    assert "d_model" in str(caught.value)


def test_malformed_json_is_reported():
    with pytest.raises(ConfigError, match="not valid JSON"):
        RunConfig.from_json("{'task': 'sst2'")


def test_different_folders_of_same_name_are_allowed():
    config = RunConfig().with_overrides({"distillation.teachers": ("/ckpt/bert/final", "/ckpt/roberta/final", "./final", "final")})

    assert config.distillation.teachers == ("/ckpt/bert/final", "/ckpt/roberta/final", "./final", "final")


def test_fft_length_defaults_to_power_of_two_at_least_twice_max_len():
    assert StudentConfig(max_seq_len=128).fft_length == 256
    assert StudentConfig(max_seq_len=100).fft_length == 256
    assert StudentConfig(max_seq_len=100, n_fft=200).fft_length == 200


def test_ffn_defaults_to_four_times_width():
    assert StudentConfig(d_model=128).ffn_size == 512
    assert StudentConfig(d_model=128, d_ff=300).ffn_size == 300


def test_flatten_gives_dotted_paths():
    flat = RunConfig().flatten()

    assert flat["student.d_model"] == 256
    assert flat["distillation.teachers"] == ("gpt2", "distilbert", "roberta")
    assert flat["training.epochs"] == TrainingConfig().epochs


def test_quaternion_rotation_needs_multiple_of_four():
    with pytest.raises(ConfigError, match="multiple of 4"):
        StudentConfig(mixer="spectral", d_model=18, n_heads=2)
    assert StudentConfig(mixer="spectral", d_model=18, n_heads=2, quaternion_rotation=False).d_model == 18


def test_config_errors_lists_every_invalid_field():
    from engine.config import config_errors

    data = RunConfig().to_dict()
    data["student"].update(n_layers=0, dropout=2.0, mixer="fourier")
    data["training"].update(batch_size=-1)

    errors = config_errors(data)

    assert sorted(error.field for error in errors) == ["student.dropout", "student.mixer", "student.n_layers", "training.batch_size"]


def test_config_errors_checks_cross_field_rules_once_fields_are_valid():
    from engine.config import config_errors

    data = RunConfig().to_dict()
    data["student"].update(d_model=96, n_heads=5)

    assert [error.field for error in config_errors(data)] == ["student.n_heads"]
    data["student"]["n_heads"] = 3
    assert config_errors(data) == []


def test_alpha_warning_only_at_the_ends():
    from engine.config import alpha_warning, config_warnings

    assert "classifier head is not trained" in alpha_warning(0.0)
    assert "the teachers change nothing" in alpha_warning(1.0)
    assert alpha_warning(0.7) is None
    assert config_warnings(RunConfig()) == []
    assert config_warnings(RunConfig().with_overrides({"distillation.alpha": 0.0})) == [alpha_warning(0.0)]


def test_fixed_weight_of_one_teacher_noted():
    from engine.config import config_warnings

    one_teacher = RunConfig().with_overrides({"distillation.teachers": ("minilm",), "distillation.weighting": "fixed", "distillation.fixed_weights": (0.5,)})

    assert config_warnings(one_teacher) == ["With one teacher, its weight is 1 whatever the fixed weight, so the fixed weighting changes nothing."]
