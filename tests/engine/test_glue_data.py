"""glue_data TSV reading: every shared file parses with its documented row count; bad rows are reported."""

from pathlib import Path

import numpy as np
import pytest

from engine.errors import DataError, MalformedRowsError
from engine.glue_data import load_split, read_glue_tsv, validate_glue_dir
from engine.tasks import get_task

# Row counts as documented for the standard glue_data download.
DOCUMENTED_ROWS = {
    ("sst2", "train"): 67349,
    ("sst2", "validation"): 872,
    ("mrpc", "train"): 3668,
    ("mrpc", "validation"): 408,
    ("cola", "train"): 8551,
    ("cola", "validation"): 1043,
    ("stsb", "train"): 5749,
    ("stsb", "validation"): 1500,
    ("rte", "train"): 2490,
    ("rte", "validation"): 277,
    ("wnli", "train"): 635,
    ("wnli", "validation"): 71,
    ("qnli", "validation"): 5463,
}


@pytest.mark.parametrize("task,split", sorted(DOCUMENTED_ROWS))
def test_shared_files_parse_with_documented_counts(glue_dir, task, split):
    rows = load_split(get_task(task), split, glue_dir)

    assert len(rows) == DOCUMENTED_ROWS[(task, split)]
    assert len(rows.labels) == len(rows)
    assert all(isinstance(text, str) and text for text in rows.texts_a[:50])
    assert (rows.texts_b is not None) == get_task(task).is_pair


def test_sst2_label_counts(glue_dir):
    train = load_split(get_task("sst2"), "train", glue_dir)
    dev = load_split(get_task("sst2"), "validation", glue_dir)

    assert np.bincount(train.labels).tolist() == [29780, 37569]
    assert np.bincount(dev.labels).tolist() == [428, 444]


def test_mrpc_byte_order_mark_is_stripped(glue_dir):
    rows = load_split(get_task("mrpc"), "train", glue_dir)

    assert rows.texts_a[0].startswith("Amrozi accused his brother")
    assert rows.labels[0] == 1


def test_cola_has_no_header_and_keeps_every_row(glue_dir):
    rows = load_split(get_task("cola"), "validation", glue_dir)

    assert rows.texts_a[0] == "The sailors rode the breeze clear of the rocks."
    assert set(np.unique(rows.labels)) == {0, 1}


def test_stsb_scores_are_floats(glue_dir):
    rows = load_split(get_task("stsb"), "train", glue_dir)

    assert rows.labels.dtype == np.float32
    assert rows.labels[:2].tolist() == [5.0, 3.799999952316284]


def test_rte_labels_are_mapped_like_the_hub(glue_dir):
    rows = load_split(get_task("rte"), "train", glue_dir, limit=2)

    # "not_entailment" then "entailment" in the file; the Hub maps entailment to 0.
    assert rows.labels.tolist() == [1, 0]


def test_limit_takes_the_first_rows(glue_dir):
    rows = load_split(get_task("sst2"), "train", glue_dir, limit=5)

    assert len(rows) == 5
    assert rows.texts_a[0].startswith("hide new secretions")


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def test_wrong_column_count_names_file_and_line(tmp_path):
    path = _write(tmp_path / "SST-2" / "train.tsv", "sentence\tlabel\ngood film\t1\nbad\tfilm\t0\nfine\t1\n")

    with pytest.raises(MalformedRowsError) as caught:
        read_glue_tsv(get_task("sst2"), path)

    assert caught.value.rows == [(3, "expected 2 tab-separated fields, found 3")]
    assert str(path) in str(caught.value)
    assert "line 3" in str(caught.value)
    assert "skip_malformed_rows" in str(caught.value)


def test_non_numeric_label_is_reported(tmp_path):
    path = _write(tmp_path / "train.tsv", "sentence\tlabel\ngood\tpositive\nbad\t0\nugly\t7\n")

    with pytest.raises(MalformedRowsError) as caught:
        read_glue_tsv(get_task("sst2"), path)

    assert [line for line, _ in caught.value.rows] == [2, 4]
    assert "'positive' is not a whole number" in caught.value.rows[0][1]
    assert "outside 0..1" in caught.value.rows[1][1]


def test_similarity_score_off_scale_is_reported(tmp_path):
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    rows = ["0\tmain\tf\t2012\t0\tnone\tnone\ta man plays\ta man plays guitar\t{}\n".format(score) for score in ("5.000", "7.5", "-0.5", "0")]
    path = _write(tmp_path / "train.tsv", header + "".join(rows))

    with pytest.raises(MalformedRowsError) as caught:
        read_glue_tsv(get_task("stsb"), path)

    assert [line for line, _ in caught.value.rows] == [3, 4]
    assert "score 7.5 is outside the task's scale 0..5" in caught.value.rows[0][1]
    assert "score -0.5 is outside" in caught.value.rows[1][1]


def test_malformed_rows_can_be_skipped(tmp_path, caplog):
    path = _write(tmp_path / "train.tsv", "sentence\tlabel\ngood\t1\nbroken row\nbad\t0\n")

    rows = read_glue_tsv(get_task("sst2"), path, skip_malformed_rows=True)

    assert rows.texts_a == ("good", "bad")
    assert "line 3" in caplog.text


def test_quotes_are_part_of_the_text(tmp_path):
    path = _write(tmp_path / "train.tsv", 'sentence\tlabel\n"a quoted\tstart\t1\n')

    with pytest.raises(MalformedRowsError):
        read_glue_tsv(get_task("sst2"), path)

    path = _write(tmp_path / "train2.tsv", 'sentence\tlabel\n"it\'s "great"\t1\n')
    assert read_glue_tsv(get_task("sst2"), path).texts_a == ('"it\'s "great"',)


def test_invalid_utf8_is_reported_with_line(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes(b"sentence\tlabel\ngood\t1\nbad \xff\t0\n")

    with pytest.raises(MalformedRowsError, match="line 3: invalid UTF-8"):
        read_glue_tsv(get_task("sst2"), path)


def test_non_ascii_and_right_to_left_text_survive(tmp_path):
    text = "café 😀 שלום עולם مرحبا"
    path = _write(tmp_path / "train.tsv", f"sentence\tlabel\n{text}\t1\n")

    assert read_glue_tsv(get_task("sst2"), path).texts_a == (text,)


def test_crlf_line_endings_are_accepted(tmp_path):
    path = _write(tmp_path / "train.tsv", "sentence\tlabel\r\ngood\t1\r\n")

    rows = read_glue_tsv(get_task("sst2"), path)

    assert rows.texts_a == ("good",)
    assert rows.labels.tolist() == [1]


def test_test_split_without_labels_gets_minus_one(tmp_path):
    path = _write(tmp_path / "test.tsv", "index\tsentence\n0\tfine\n1\tawful\n")

    rows = read_glue_tsv(get_task("sst2"), path, split="test")

    assert rows.labels.tolist() == [-1, -1]
    assert not rows.has_labels


def test_missing_task_folder_is_named(tmp_path):
    (tmp_path / "SST-2").mkdir()

    with pytest.raises(DataError) as caught:
        validate_glue_dir(get_task("mnli"), tmp_path)

    assert "no MNLI/ folder" in str(caught.value)
    assert "SST-2" in str(caught.value)


def test_missing_split_file_is_named(tmp_path):
    _write(tmp_path / "SST-2" / "train.tsv", "sentence\tlabel\nok\t1\n")

    with pytest.raises(DataError) as caught:
        validate_glue_dir(get_task("sst2"), tmp_path)

    assert "dev.tsv is missing" in str(caught.value)


def test_missing_glue_folder_is_named(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_split(get_task("sst2"), "train", tmp_path / "nowhere")


def test_missing_header_column_is_named(tmp_path):
    path = _write(tmp_path / "train.tsv", "text\tlabel\nok\t1\n")

    with pytest.raises(DataError, match="no column 'sentence'"):
        read_glue_tsv(get_task("sst2"), path)


@pytest.mark.parametrize("split", ["train", "validation"])
def test_missing_label_column_is_named(tmp_path, split):
    # A renamed label column used to load as unlabelled rows, like a test split.
    path = _write(tmp_path / "dev.tsv", "sentence1\tsentence2\tgold_label\na\tb\t1\n")

    with pytest.raises(DataError) as caught:
        read_glue_tsv(get_task("wnli"), path, split=split)

    assert "has no column 'label' in its header (found: sentence1, sentence2, gold_label)" in str(caught.value)


@pytest.mark.parametrize("split", ["train", "validation"])
def test_header_without_rows_is_rejected(tmp_path, split):
    path = _write(tmp_path / "dev.tsv", "sentence\tlabel\n")

    with pytest.raises(DataError, match="has no data rows"):
        read_glue_tsv(get_task("sst2"), path, split=split)


def test_all_rows_skipped_is_rejected(tmp_path):
    path = _write(tmp_path / "train.tsv", "sentence\tlabel\nfine\tyes\nawful\tno\n")

    with pytest.raises(DataError, match="All 2 rows were malformed and skipped"):
        read_glue_tsv(get_task("sst2"), path, skip_malformed_rows=True)


def test_hub_unreachable_gives_a_clear_message():
    from engine.errors import HubUnreachableError

    with pytest.raises(HubUnreachableError) as caught:
        load_split(get_task("sst2"), "train", None, limit=10)

    assert "Hugging Face Hub" in str(caught.value)
    assert "--data-dir" in str(caught.value)


def test_hub_rows_are_mapped(monkeypatch):
    import datasets

    requests = []

    def fake_load_dataset(name, config, split):
        requests.append((name, config, split))
        return datasets.Dataset.from_dict({"premise": ["p1", "p2"], "hypothesis": ["h1", "h2"], "label": [2, -1], "idx": [0, 1]})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)

    rows = load_split(get_task("mnli"), "validation_matched", None, limit=2)

    assert requests == [("nyu-mll/glue", "mnli", "validation_matched[:2]")]
    assert rows.texts_a == ("p1", "p2") and rows.texts_b == ("h1", "h2")
    assert rows.labels.tolist() == [2, -1]


def test_hub_download_stops_waiting_when_cancelled(monkeypatch):
    import threading

    import datasets

    from engine.errors import RunCancelled
    from engine.events import CancellationToken

    started, released = threading.Event(), threading.Event()

    def slow_load_dataset(name, config, split):
        started.set()
        released.wait(timeout=60)  # a download that only the test ends
        return datasets.Dataset.from_dict({"sentence": ["a"], "label": [1], "idx": [0]})

    monkeypatch.setattr(datasets, "load_dataset", slow_load_dataset)
    cancel = CancellationToken()
    threading.Thread(target=lambda: started.wait(timeout=60) and cancel.cancel(), daemon=True).start()

    with pytest.raises(RunCancelled):
        load_split(get_task("sst2"), "train", None, limit=10, cancel=cancel)

    assert not released.is_set()  # the download was still running when the wait stopped
    released.set()


def test_hub_download_error_reaches_caller(monkeypatch):
    import datasets

    from engine.errors import HubUnreachableError
    from engine.events import CancellationToken

    def failing_load_dataset(name, config, split):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(datasets, "load_dataset", failing_load_dataset)

    with pytest.raises(HubUnreachableError, match="ConnectionError: no route to host"):
        load_split(get_task("sst2"), "train", None, limit=10, cancel=CancellationToken())
