from pathlib import Path


def test_padding_quick_prints_ratio_and_accuracy(run_bench, shared_data):
    completed = run_bench("padding.py", "--quick", "--threads", "1", "--amp", "off", "--data", str(shared_data))

    assert completed.returncode == 0, completed.stderr
    assert "padding (" in completed.stdout
    assert "fp32 (--amp off)" in completed.stdout
    assert "(bucketed); epoch time longest/bucketed = " in completed.stdout
    assert "epoch time max_length/bucketed = " in completed.stdout


def test_trainer_config_passes_amp():
    from bench.common import trainer_config

    def config(**options):
        return trainer_config(Path("data"), Path("tokenizer"), ["minilm"], quick=True, train_limit=10, dev_limit=None, epochs=1, **options)

    assert config().training.amp is True
    assert config(amp=False).training.amp is False


def test_padding_without_data_names_the_variable(run_bench, monkeypatch):
    monkeypatch.delenv("LAMPREIA_TEST_DATA", raising=False)

    completed = run_bench("padding.py", "--quick")

    assert completed.returncode != 0
    assert "LAMPREIA_TEST_DATA" in completed.stderr
