"""Speed and scale benchmarks (`python -m bench`): scripts that print numbers and write JSON.

Importing any bench module first sets the offline environment here, before a bench module can
import sentence-transformers or chromadb: nothing is fetched and no telemetry is sent.
"""

import os

for _key, _value in (
    ("HF_HUB_OFFLINE", "1"),
    ("TRANSFORMERS_OFFLINE", "1"),
    ("ANONYMIZED_TELEMETRY", "False"),
    ("TOKENIZERS_PARALLELISM", "false"),
):
    os.environ.setdefault(_key, _value)
