"""The engine's transformers imports from several threads at once, as the workbench makes them at start-up."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# In a fresh interpreter, three threads load a tokenizer while a fourth imports transformers' auto
# modules as the workbench's import warm-up does. With `from transformers import …` in the
# engine, two of the three loads failed with "cannot import name 'AutoTokenizer'" in 6 of 6 tries.
RACE = textwrap.dedent(
    """
    import threading
    from engine.model_sources import packaged_minilm_folder
    from engine.tokenization import load_tokenizer
    from workbench.import_warmup import ImportWarmup

    folder = packaged_minilm_folder()
    errors = []

    def load():
        try:
            load_tokenizer(folder)
        except Exception as error:
            errors.append(repr(error))

    threads = [threading.Thread(target=load) for _ in range(3)]
    warmup = ImportWarmup()
    warmup.thread.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    warmup.join()
    print("errors:", errors)
    """
)


def test_tokenizers_load_from_concurrent_threads():
    result = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "errors: []"
