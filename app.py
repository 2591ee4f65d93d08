"""Dosewise chat for clinicians: ``streamlit run app.py`` (bound to 127.0.0.1 by .streamlit/config.toml).

Reads top to bottom: settings → cached resources (embedder, index, limits, assistant, audit log)
→ sidebar (audience, patient context, index status, backend) → disclaimer → chat history →
the new question → its answer.

Nothing here renders raw HTML: corpus excerpts are Markdown-escaped and answer Markdown has its
HTML and images neutralised, so a document or an LLM cannot inject script or fetch a URL.

Dependency injection (tests): if ``st.session_state["_assistant_factory"]`` holds a callable, it
is called once per session as ``factory(index=..., embedder=..., limits=..., settings=...)`` and
must return an object with the ``Assistant.ask`` signature (``stream`` optional). Everything else
comes from ``Settings()`` (``DOSEWISE_*`` environment variables or ``dosewise.toml``).
"""

from __future__ import annotations

import os

# Before anything imports sentence-transformers or chromadb: nothing may download or phone home.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import datetime as dt
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NoReturn

import streamlit as st

from assistant import Assistant, AuditLog, get_backend
from assistant.model import AnswerResult, Citation, ClaimView
from assistant.wording import excerpt_view
from guardrails import load_limits, validate_patient
from guardrails.errors import PatientInputError
from ingest import Embedder, open_index
from ingest.model import StoreConfig
from settings import Settings
from tokens import TokenError, TokenStore, sign_in_required

st.set_page_config(page_title="Dosewise", page_icon="💊", layout="centered")

settings = Settings()

AUDIENCES = {"Healthcare professional": "clinician", "Patient or caregiver": "patient"}
PHENOTYPES = ["normal", "intermediate", "poor", "unknown"]
COMEDICATIONS = [
    "allopurinol",
    "febuxostat",
    "warfarin",
    "co-trimoxazole",
    "ribavirin",
    "mesalazine",
    "ACE inhibitor",
]
# Material icons ship with Streamlit's frontend; emoji depend on the viewer's system fonts.
STATUS_ICONS = {
    "supported": ":green[:material/check_circle:]",
    "derived": ":blue[:material/calculate:]",
    "unsupported": ":red[:material/cancel:]",
    "out_of_limits": ":red[:material/block:]",
    "unit_mismatch": ":orange[:material/warning:]",
}
EXAMPLES = [
    "What is the recommended dose of azathioprine for treating lupus?",
    "How should azathioprine be dosed when TPMT is intermediate?",
    "What monitoring does azathioprine need?",
]


# --- Rendering helpers: every piece of corpus or LLM text goes through one of these. ----------

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>$~:=^])")
_HTML_TAG = re.compile(r"<")
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]*)[^)]*\)")
_DOLLAR = re.compile(r"(?<!\\)\$")
# The chain ends an answer with a numbered reference list; the Sources panel shows the same
# references with their excerpts, so the list is not repeated in the answer body.
_REFERENCE_BLOCK = re.compile(
    r"\n*\*\*(?:Sources|Where this comes from)\*\*\n(?:\d+\.[^\n]*(?:\n|$))+\s*\Z"
)


def escape_md(text: str) -> str:
    """Literal text for st.markdown: no Markdown, no HTML, no LaTeX, no Streamlit directives."""
    escaped = _MD_SPECIAL.sub(r"\\\1", text)
    # Single newlines would collapse; keep the excerpt's line structure as hard breaks.
    return escaped.replace("\n", "  \n")


def safe_answer_md(markdown: str) -> str:
    """Answer Markdown is meant to render (bold, sections, lists) but must not load anything:
    images become their alt text, links keep their text only, HTML is shown as text and ``$``
    never starts LaTeX."""
    text = _MD_IMAGE.sub(lambda m: m.group(1), markdown)
    text = _MD_LINK.sub(lambda m: m.group(1), text)
    text = _HTML_TAG.sub("&lt;", text)
    return _DOLLAR.sub(r"\\$", text)


def highlighted_excerpt(
    excerpt: str, spans: Sequence[tuple[int, int]], sentences: Sequence[tuple[int, int]] = ()
) -> str:
    """The excerpt as literal text, without its ``[@id]`` source markers: the sentences the
    answer cites on an orange background, the supporting numbers in bold."""
    text, (numbers, cited) = excerpt_view(excerpt, spans, sentences)
    numbers = tuple(s for s in numbers if 0 <= s[0] < s[1] <= len(text))
    cited = tuple(s for s in cited if 0 <= s[0] < s[1] <= len(text))

    def bold_numbers(start: int, end: int) -> str:
        out: list[str] = []
        cursor = start
        for a, b in numbers:
            if a < cursor or b > end:  # overlapping, or crossing the piece: left plain
                continue
            out.append(escape_md(text[cursor:a]))
            out.append(f"**{escape_md(text[a:b])}**")
            cursor = b
        out.append(escape_md(text[cursor:end]))
        return "".join(out)

    parts: list[str] = []
    cursor = 0
    # A number outside every cited sentence still gets its highlight.
    marks = list(cited) + [s for s in numbers if not any(c[0] <= s[0] < c[1] for c in cited)]
    for start, end in sorted(marks):
        if start < cursor:  # overlapping spans: the first one wins
            continue
        parts.append(bold_numbers(cursor, start))
        parts.append(f":orange-background[{bold_numbers(start, end)}]")
        cursor = end
    parts.append(bold_numbers(cursor, len(text)))
    return "".join(parts)


def all_verified(result: AnswerResult) -> bool:
    return bool(result.claims) and all(c.status in ("supported", "derived") for c in result.claims)


def badge_markdown(result: AnswerResult) -> str:
    review = review_summary(c.review_status for c in result.citations)
    tail = f" · Sources: {len(result.citations)} · Review status: {escape_md(review)}"
    if not result.claims:
        return f":blue-badge[:material/info: No numbers to verify]{tail}"
    if all_verified(result):
        return f":green-badge[:material/verified: {escape_md(result.badge)}]{tail}"
    return f":orange-badge[:material/warning: {escape_md(result.badge)}]{tail}"


def review_summary(statuses: Iterable[str]) -> str:
    seen = {s for s in statuses if s}
    if not seen or seen - {"approved", "clinician-reviewed"}:
        return "draft (not yet clinician-approved)"
    return "clinician-approved" if seen == {"approved"} else "clinician-reviewed"


def citation_markdown(c: Citation) -> str:
    evidence = c.evidence or c.doc_kind
    lines = [
        f"**[{c.n}] {escape_md(c.title)}**",
        f"{escape_md(c.section or 'whole document')} · {escape_md(evidence)}",
        f"Review status: **{escape_md(c.review_status or 'draft')}** · "
        f"Last reviewed: {escape_md(c.last_reviewed or 'not recorded')}",
        f"Reference: {escape_md(c.source_reference or 'not recorded')}",
    ]
    return "  \n".join(lines)


def claim_markdown(claim: ClaimView) -> str:
    icon = STATUS_ICONS.get(claim.status, ":material/help:")
    where = f" — source [{claim.citation_n}]" if claim.citation_n is not None else ""
    line = (
        f"- {icon} **{escape_md(claim.text)}** · {escape_md(claim.status.replace('_', ' '))}{where}"
    )
    if claim.statement:
        # What the number doses, as its source states it: "maintenance dose, lupus nephritis, ..."
        line += f"\n    - {escape_md(claim.statement)}"
    if claim.derivation:
        steps = [s.strip() for s in claim.derivation.split(";") if s.strip()]
        line += "".join(f"\n    - {escape_md(s)}" for s in steps)
    if claim.reason and (claim.status != "supported" and not claim.derivation):
        line += f"\n    - {escape_md(claim.reason)}"
    return line


def export_markdown(
    result: AnswerResult, patient_label: str, when: str, record_id: str | None
) -> str:
    """A self-contained Markdown copy of one answer, with its sources and number checks."""
    out = [
        f"# Dosewise answer — {when}",
        "",
        f"- Question: {result.question}",
        f"- Patient context: {patient_label or 'none given'}",
        f"- Status: {result.status} · {result.badge} · backend: {result.backend}",
        f"- Audit record: {record_id or 'not recorded'}",
        "",
        result.answer,
    ]
    if result.note:
        out += ["", f"> {result.note}"]
    if result.claims:
        out += ["", "## Numbers"]
        out += [
            f"- {c.text}: {c.status}"
            + (f" [{c.citation_n}]" if c.citation_n is not None else "")
            + (f" ({c.derivation})" if c.derivation else "")
            for c in result.claims
        ]
    if result.citations:
        out += ["", "## Sources"]
        for c in result.citations:
            out += [
                f"{c.n}. [{c.evidence or c.doc_kind}] {c.title} — {c.section} ({c.review_status}, last reviewed "
                f"{c.last_reviewed or 'n/a'}). {c.source_reference}",
                "",
                "   > " + excerpt_view(c.excerpt)[0].replace("\n", "\n   > "),
            ]
    out += ["", "_Verify before use; not a substitute for clinical judgement._", ""]
    return "\n".join(out)


def stat(stats: Any, name: str, default: Any = None) -> Any:
    """Index.stats() may be a mapping or an object; read a field either way."""
    if isinstance(stats, dict):
        return stats.get(name, default)
    return getattr(stats, name, default)


def age_text(when: Any) -> str:
    if not when:
        return "never"
    try:
        stamp = when if isinstance(when, dt.datetime) else dt.datetime.fromisoformat(str(when))
    except ValueError:
        return str(when)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    minutes = int((dt.datetime.now(dt.UTC) - stamp).total_seconds() // 60)
    if minutes < 1:
        ago = "just now"
    elif minutes < 120:
        ago = f"{minutes} min ago"
    elif minutes < 72 * 60:
        ago = f"{minutes // 60} h ago"
    else:
        ago = f"{minutes // 1440} days ago"
    return f"{stamp:%Y-%m-%d %H:%M} UTC ({ago})"


# Runs in the page (st.html, not an iframe). Streamlit scrolls a chat back to its bottom each
# time something below the answer is laid out or the run finishes (seconds later on a loaded
# machine), so for 30 s the answer's top is put back in view whenever it has left, until the
# reader scrolls, clicks or types: programmatic scrolls fire none of those events.
_SCROLL_TO_NEW_ANSWER = """<script>
(() => {
  let reading = false;
  for (const e of ["wheel", "touchstart", "keydown", "mousedown"]) {
    window.addEventListener(e, () => { reading = true; }, {once: true, capture: true});
  }
  const started = Date.now();
  const keep = () => {
    if (reading || Date.now() - started > 30000) return;
    const all = document.querySelectorAll('[data-testid="stChatMessage"]');
    if (all.length) {
      const answer = all[all.length - 1];
      const top = answer.getBoundingClientRect().top;
      if (top < -8 || top > window.innerHeight / 2) answer.scrollIntoView({block: "start"});
    }
    setTimeout(keep, 150);
  };
  setTimeout(keep, 60);
})();
</script>"""

_UPLOAD_TYPES = ("txt", "md", "markdown", "html", "htm", "pdf", "xml")
_UPLOAD_NAME_RE = re.compile(r"[^A-Za-z0-9._-]+")


def save_uploads(
    files: Iterable[Any], folder: Path, max_bytes: int
) -> tuple[list[Path], list[str]]:
    """Write uploaded files into ``folder`` under safe names (no path parts, no hidden or
    ``_`` names the walker would ignore); returns (saved paths, messages for refused files)."""
    folder.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    refused: list[str] = []
    for f in files:
        name = _UPLOAD_NAME_RE.sub("-", Path(str(f.name)).name).lstrip("._-") or "upload"
        suffix = Path(name).suffix.lower().lstrip(".")
        data = f.getvalue()
        if suffix not in _UPLOAD_TYPES:
            refused.append(f"{f.name}: unsupported file type")
        elif not data:
            refused.append(f"{f.name}: empty file")
        elif len(data) > max_bytes:
            refused.append(f"{f.name}: too large ({len(data) / 1e6:.1f} MB)")
        else:
            target = folder / name
            target.write_bytes(data)
            saved.append(target)
    return saved, refused


def ingest_uploads(index: Any, embedder: Any, settings: Settings, folder: Path) -> Any:
    """Index the uploads folder together with every file the index already holds (the index
    mirrors what one ingest is given, so the others must be named again); the same lock as
    `dosewise ingest`. A file that has gone away keeps its chunks (reported as skipped)."""
    from ingest.pipeline import run_ingest

    known: set[str] = set()
    for _fp, path in index.fingerprints().values():
        archive = path.split("!", 1)[0]  # a label read from a zip: "labels.zip!x.xml"
        # A file gone since is named anyway: skipped, it keeps its chunks (never dropped here).
        known.add(archive if archive != path and Path(archive).exists() else path)
    roots = [str(settings.corpus_dir), str(folder)]
    inside = [Path(r).resolve() for r in roots]
    others = sorted(
        p for p in known
        if p and not any(Path(p).resolve().is_relative_to(r) for r in inside)
    )  # fmt: skip
    return run_ingest(
        roots + others, settings.store, embedder, chunk_size=settings.chunk_size,
        data_dir=settings.data_dir, progress=False,
    )  # fmt: skip


# --- Cached resources: built once per process, so the first answer only opens the index. ------


@st.cache_resource(show_spinner="Loading the embedding model…")
def load_embedder(model_path: str, query_threads: int | None = None) -> Embedder:
    return Embedder(model_path, query_threads=query_threads)


@st.cache_resource(show_spinner="Opening the index…")
def load_index(
    mode: str, path: str, host: str, port: int, collection: str, timeout_s: float, _embedder: Any
) -> Any:
    config = StoreConfig(
        mode=mode, path=path, host=host, port=port, collection=collection, timeout_s=timeout_s
    )
    return open_index(config, _embedder)


@st.cache_data(show_spinner=False, max_entries=8)
def corpus_overview(path: str, generation: int, _index: Any) -> dict[str, Any]:
    """Index stats and the review statuses in it, read once per ingest generation (stats()
    scans every chunk's metadata, too slow for every widget interaction)."""
    stats = dict(_index.stats())
    stats["review_statuses"] = sorted({c.review_status for c in _index.all_chunks()})
    return stats


@st.cache_resource
def load_limit_table() -> Any:
    return load_limits()


@st.cache_resource(show_spinner="Connecting to the LLM backend…")
def load_llm(
    name: str,
    model: str,
    base_url: str,
    api_key: str,
    timeout_s: float,
    model_path: str,
    chat_format: str = "",
) -> Any:
    return get_backend(
        name,
        model=model,
        base_url=base_url,
        api_key=api_key,
        timeout_s=timeout_s,
        model_path=model_path,
        chat_format=chat_format,
    )


@st.cache_resource(show_spinner=False)
def warm_up(_assistant: Any, key: str) -> threading.Thread:
    """Load the embedding model and the lexical index while the clinician reads and types: the
    model loads lazily, and without this the first answer alone waits ~10 s for it."""

    def run() -> None:
        try:
            _assistant.passages_for("azathioprine dose")
        except Exception:  # the first real question meets the failure and reports it
            pass

    thread = threading.Thread(target=run, name="dosewise-warm-up", daemon=True)
    thread.start()
    return thread


@st.cache_resource
def load_assistant(
    _index: Any, _embedder: Any, _limits: Any, _llm: Any, k: int, data_dir: str, key: str
) -> Assistant:
    # ``key`` (store path + backend) stands in for the unhashable collaborators in the cache key.
    return Assistant(
        _index,
        _embedder,
        _limits,
        llm=_llm,
        k=k,
        data_dir=data_dir,
        llm_timeout_s=settings.llm_timeout_s,
        backend_name=settings.llm_backend if _llm is not None else None,
    )


@st.cache_resource
def load_audit(path: str) -> AuditLog:
    return AuditLog(path)


st.title("Dosewise")
st.caption(
    "For healthcare professionals: drug-dosing answers in which every number is checked against "
    "its cited source. Verify before use; Dosewise is not a substitute for clinical judgement."
)


def fail(message: str) -> NoReturn:
    st.error(message, icon=":material/error:")
    st.stop()


# --- Sign-in: a token is needed when the app listens beyond loopback (or behind a proxy). ----


def sign_in(tokens: TokenStore) -> str:
    """The signed-in user's token name; otherwise the sign-in form, and the page stops there."""
    try:
        if not tokens.has_active():
            fail(
                "Sign-in is required (Dosewise is reachable from other machines), but no access "
                "token exists yet. An administrator creates one with `dosewise token create NAME`."
            )
        signed = st.session_state.get("_signed_in")
        if signed and tokens.is_active(signed[1]):  # a revoked token ends its sessions
            return str(signed[0])
    except TokenError as exc:
        fail(f"Sign-in is unavailable: {exc}")
    st.session_state.pop("_signed_in", None)
    with st.form("sign-in"):
        token = st.text_input("Access token", type="password", help="From `dosewise token create`.")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        verdict = tokens.verify(token)
        if verdict.user is not None:
            st.session_state["_signed_in"] = (verdict.user, verdict.token_id)
            st.rerun()
        try:  # without the attempted token: the audit records that, not what
            load_audit(str(settings.audit_path)).auth_failure(
                method="SIGN-IN",
                path="/app",
                reason=verdict.reason,
                client=str(getattr(st.context, "ip_address", None) or ""),
            )
        except Exception:
            pass
        st.error("That access token is not valid.", icon=":material/lock:")
    st.stop()


signed_in_user: str | None = None
if sign_in_required(st.get_option("server.address"), settings.require_sign_in):
    signed_in_user = sign_in(TokenStore(settings.token_path))
    st.sidebar.caption(f"Signed in as **{escape_md(signed_in_user)}**")


try:
    embedder = load_embedder(settings.model_path, settings.query_threads)
except Exception as exc:  # the message is user-facing (EmbeddingModelError) or says what broke
    fail(f"The embedding model cannot be loaded: {exc}")

store = settings.store
try:
    index = load_index(
        store.mode, store.path, store.host, store.port, store.collection, store.timeout_s, embedder
    )
    if not index.count():
        index.refresh()  # an ingest may have run since the index was opened empty
    index_stats = corpus_overview(store.path, index.generation, index)
except Exception as exc:
    if store.mode == "server":
        fail(
            f"The Chroma server at {store.host}:{store.port} is unreachable ({exc}). "
            "Start it, or set DOSEWISE_CHROMA_MODE=embedded."
        )
    fail(f"The index at `{store.path}` cannot be opened ({exc}). Run `dosewise ingest` first.")

if not stat(index_stats, "chunks", 0):
    fail(f"The index at `{store.path}` is empty. Run `dosewise ingest` first.")

limits = load_limit_table()

llm = None
llm_error = ""
if settings.llm_backend and settings.llm_backend != "none":
    try:
        llm = load_llm(
            settings.llm_backend,
            settings.llm_model,
            settings.llm_base_url,
            settings.llm_api_key,
            settings.llm_timeout_s,
            settings.llamacpp_model_path,
            settings.llamacpp_chat_format,
        )
    except Exception as exc:
        llm_error = f"LLM backend '{settings.llm_backend}' unavailable ({exc}); using the deterministic composer."

factory: Callable[..., Any] | None = st.session_state.get("_assistant_factory")
if factory is not None:
    if "_assistant" not in st.session_state:
        st.session_state["_assistant"] = factory(
            index=index, embedder=embedder, limits=limits, settings=settings
        )
    assistant = st.session_state["_assistant"]
else:
    assistant = load_assistant(
        index,
        embedder,
        limits,
        llm,
        settings.retrieval_k,
        str(settings.data_dir),
        f"{store.mode}:{store.path}:{store.host}:{store.port}:{settings.llm_backend}",
    )

try:
    audit = load_audit(str(settings.audit_path))
    audit_error = ""
except Exception as exc:
    audit = None
    audit_error = f"The audit log at `{settings.audit_path}` cannot be opened ({exc})."

if "messages" not in st.session_state:
    st.session_state.messages = []
messages: list[dict[str, Any]] = st.session_state.messages


# --- Sidebar: who is asking, about which patient, from which index, with which backend. --------

with st.sidebar:
    st.header("Dosewise")
    audience_label = st.radio(
        "Which best describes you?",
        list(AUDIENCES),
        help="Your choice changes the wording of the answers, never the numbers.",
    )
    audience = AUDIENCES[audience_label or "Healthcare professional"]

    st.subheader("Patient context")
    weight = st.number_input(
        "Weight (kg)",
        value=None,
        step=0.5,
        format="%.1f",
        placeholder="not given",
        help="Used to compute mg/kg doses; leave empty if unknown.",
    )
    tpmt = st.selectbox("TPMT phenotype", PHENOTYPES, index=None, placeholder="not given")
    nudt15 = st.selectbox("NUDT15 phenotype", PHENOTYPES, index=None, placeholder="not given")
    comeds = st.multiselect("Co-medications", COMEDICATIONS, placeholder="none")
    egfr = st.number_input(
        "eGFR (mL/min/1.73 m²)",
        value=None,
        step=1.0,
        format="%.0f",
        placeholder="not given",
        help="Kidney function; the sources' kidney-function rules are shown for this patient.",
    )
    age = st.number_input(
        "Age (years)", value=None, step=1.0, format="%.0f", placeholder="not given"
    )

    patient = None
    patient_label = ""
    if weight is not None or tpmt or nudt15 or comeds or egfr is not None or age is not None:
        try:
            weight_dec = None if weight is None else Decimal(str(weight))
        except InvalidOperation:
            weight_dec = None
        try:
            patient = validate_patient(weight_dec, tpmt, nudt15, tuple(comeds), egfr=egfr,
                                       age_years=age)  # fmt: skip
        except PatientInputError as exc:
            st.error(f"{exc} This patient context is not used.", icon=":material/person_alert:")
        else:
            # Say what was understood ("TPMT poor" for "absent activity"), not what was typed.
            patient_label = patient.describe()
            st.caption(f"In use: {patient_label}")

    st.subheader("Index")
    st.markdown(
        f"Documents: **{stat(index_stats, 'documents', '?')}** · "
        f"Chunks: **{stat(index_stats, 'chunks', '?')}**  \n"
        f"Last ingest: {escape_md(age_text(stat(index_stats, 'updated_at')))}"
    )
    backend_label = (
        f"{settings.llm_backend} ({settings.llm_model or 'default model'})"
        if llm is not None
        else "deterministic composer (no LLM)"
    )
    st.markdown(f"Backend: **{escape_md(backend_label)}**")
    if llm_error:
        st.warning(llm_error)
    st.caption(
        "For healthcare professionals. Verify before use; not a substitute for clinical "
        f"judgement. Corpus: {escape_md(review_summary(stat(index_stats, 'review_statuses', None) or ()))}."
    )
    uploaded = st.file_uploader(
        "Add your own documents",
        type=list(_UPLOAD_TYPES),
        accept_multiple_files=True,
        help="Guidelines, protocols, labels (text, Markdown, HTML, PDF, SPL XML): indexed with "
        "the corpus; drugs and sections are read from each document.",
    )
    if uploaded and st.button("Add to the index", icon=":material/upload_file:"):
        folder = Path(settings.data_dir) / "uploads"
        saved, refused = save_uploads(uploaded, folder, 20 * 1024 * 1024)
        upload_notes = [f"Not added: {r}" for r in refused]
        if saved:
            from ingest.errors import IngestError

            try:
                with st.spinner("Indexing…"):
                    report = ingest_uploads(index, embedder, settings, folder)
            except IngestError as exc:
                upload_notes.append(f"Not indexed: {exc}")
            else:
                names = {str(p) for p in saved}
                upload_notes += [
                    f"Not added: {Path(sk.path).name}: {sk.reason}"
                    for sk in report.skipped if sk.path in names
                ]  # fmt: skip
                upload_notes.insert(0, f"Indexed {len(saved)} file(s): {report.chunks_added} "
                                    f"chunks added, generation {report.generation}.")  # fmt: skip
                index.refresh()
                corpus_overview.clear()
        st.session_state["_upload_notes"] = upload_notes
        st.rerun()
    for note in st.session_state.get("_upload_notes", ()):
        (st.warning if note.startswith("Not") else st.success)(note)
    if st.button("Reload index", icon=":material/sync:", help="After a new `dosewise ingest`."):
        index.refresh()
        corpus_overview.clear()
        st.rerun()
    if st.button("New conversation", icon=":material/refresh:"):
        messages.clear()
        st.rerun()


# --- Always visible: what this is, how far to trust it. -----------------------------------------

corpus_review = review_summary(stat(index_stats, "review_statuses", None) or ())
st.caption(
    f"Corpus review status: **{corpus_review}** · {stat(index_stats, 'documents', '?')} documents"
)
if audience == "patient":
    st.warning(
        "Dosewise is written for healthcare professionals. Do not change a dose on your own: "
        "talk to your doctor or pharmacist first.",
        icon=":material/health_and_safety:",
    )
if audit_error:
    st.warning(audit_error + " Answers are shown but not recorded.")


# --- One answer, as the clinician sees it. ----------------------------------------------------


def store_feedback(i: int) -> None:
    msg = messages[i]
    value = st.session_state.get(f"fb-{i}")
    comment = st.session_state.get(f"fb-comment-{i}", "") or ""
    if value is None or audit is None or not msg.get("record_id"):
        return
    try:
        audit.feedback(msg["record_id"], bool(value), comment.strip())
        msg["feedback"] = "Thanks — your feedback is recorded."
    except Exception as exc:
        msg["feedback"] = f"Feedback could not be recorded ({exc})."


def queue_question(question: str) -> None:
    st.session_state["_pending_question"] = question


def render_answer(i: int, msg: dict[str, Any], latest: bool) -> None:
    if "error" in msg:
        st.error(msg["error"], icon=":material/error:")
        return
    result: AnswerResult = msg["result"]
    # The chain prefixes its note to the answer (for the CLI); here it gets its own warning box.
    body = result.answer.removeprefix(f"_{result.note}_\n\n")
    if result.citations:
        body = _REFERENCE_BLOCK.sub("", body)
    body = safe_answer_md(body)
    if result.status == "rejected":
        st.info(
            safe_answer_md(result.answer) or "Please ask a dosing question.", icon=":material/edit:"
        )
        return
    if result.status == "abstained":
        st.info(
            "No verified answer: the corpus does not support one. " + body,
            icon=":material/search_off:",
        )
    elif result.status == "blocked" and not result.claims:
        st.error(
            "The answer was withheld because its numbers could not be verified. " + body,
            icon=":material/block:",
        )
    else:
        # Verdict first, as a clinician reads it: how much of this is proven, from what.
        st.markdown(badge_markdown(result))
        if result.note:
            st.warning(safe_answer_md(result.note), icon=":material/shield:")
        st.markdown(body)
    if result.note and result.status in ("abstained", "blocked"):
        st.warning(safe_answer_md(result.note), icon=":material/shield:")
    if result.status in ("abstained", "rejected") and not result.citations:
        return

    if result.claims:
        verified = sum(1 for c in result.claims if c.status in ("supported", "derived"))
        with st.expander(
            f"Numbers ({verified} of {len(result.claims)} verified)", icon=":material/pin:"
        ):
            st.markdown("\n".join(claim_markdown(c) for c in result.claims))
    if result.citations:
        with st.expander(
            f"Sources ({len(result.citations)}): references and highlighted excerpts",
            icon=":material/menu_book:",
        ):
            for c in result.citations:
                with st.container(border=True):
                    st.markdown(citation_markdown(c))
                    st.markdown(highlighted_excerpt(c.excerpt, c.highlights, c.sentences))

    if msg.get("audit_error"):
        st.warning(msg["audit_error"], icon=":material/history:")
    with st.container(horizontal=True, vertical_alignment="center"):
        st.feedback("thumbs", key=f"fb-{i}", on_change=store_feedback, args=(i,))
        st.download_button(
            "Export answer",
            data=msg["export"],
            file_name=f"dosewise-answer-{i + 1}.md",
            mime="text/markdown",
            key=f"export-{i}",
            on_click="ignore",
            icon=":material/download:",
        )
        total_ms = result.timings_ms.get("total")
        timing = f" · {total_ms / 1000:.1f} s" if total_ms else ""
        st.caption(f"{escape_md(result.backend)}{timing}")
    if st.session_state.get(f"fb-{i}") is not None and msg.get("record_id"):
        with st.form(f"fb-form-{i}", border=False):
            st.text_input("Comment (optional)", key=f"fb-comment-{i}")
            if st.form_submit_button("Send comment"):
                store_feedback(i)
    if msg.get("feedback"):
        st.caption(msg["feedback"])
    if latest and result.followups:
        st.caption("Follow-up questions")
        with st.container(horizontal=True):
            for j, q in enumerate(result.followups):
                st.button(q, key=f"followup-{i}-{j}", on_click=queue_question, args=(q,))


def history_for(messages: Sequence[dict[str, Any]]) -> tuple[tuple[str, AnswerResult], ...]:
    """Earlier turns as (question, AnswerResult): a follow-up ("and in pregnancy?") inherits
    the drug and indication of the last answered turn."""
    return tuple((m["result"].question, m["result"]) for m in messages if "result" in m)


def answer(question: str) -> dict[str, Any]:
    """Ask, display while asking, record; returns the history entry."""
    history = history_for(messages)
    kwargs = {"history": history, "patient": patient, "audience": audience}
    try:
        if getattr(assistant, "llm", None) is not None and hasattr(assistant, "stream"):
            result = stream_answer(question, kwargs)
        else:
            waiting = st.empty()
            if warming is not None and warming.is_alive():
                # Only the first question after a start meets this: say what it waits for,
                # rather than leave a clinician looking at a bare spinner for seconds.
                with (
                    waiting.container(),
                    st.spinner(
                        "First question since Dosewise started: loading the embedding model and "
                        "the search index (once only)…"
                    ),
                ):
                    warming.join()
            with waiting.container(), st.spinner("Searching the corpus and checking every number…"):
                result = assistant.ask(question, **kwargs)
            waiting.empty()
    except Exception as exc:  # a crash must become a message, never a blank page
        return {"role": "assistant", "error": f"Dosewise could not answer: {exc}"}
    msg: dict[str, Any] = {"role": "assistant", "result": result, "record_id": None}
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if audit is not None:
        try:
            msg["record_id"] = audit.record(question, patient, result, user=signed_in_user)
        except Exception as exc:  # AuditWriteError, or anything else: show the answer anyway
            msg["audit_error"] = f"This answer could not be written to the audit log ({exc})."
    else:
        msg["audit_error"] = "This answer is not in the audit log (the log is unavailable)."
    # Built here rather than by AuditLog.export_markdown, which rereads the whole log.
    msg["export"] = export_markdown(result, patient_label, when, msg["record_id"])
    return msg


def stream_answer(question: str, kwargs: dict[str, Any]) -> AnswerResult:
    """Show the guarded text as the backend produces it; the stream ends with the AnswerResult."""
    final: list[AnswerResult] = []

    def text_only() -> Iterator[str]:
        for part in assistant.stream(question, **kwargs):
            if isinstance(part, AnswerResult):
                final.append(part)
            else:
                yield str(part)

    placeholder = st.empty()
    with placeholder.container():
        st.write_stream(text_only())
    placeholder.empty()  # replaced by the full rendering (badge, sources, numbers)
    if not final:
        return assistant.ask(question, **kwargs)
    return final[-1]


# --- The conversation. -----------------------------------------------------------------------

# The input box is pinned to the bottom wherever it is called; reading it first tells the history
# loop whether its last answer is still the latest (only the latest shows follow-up buttons).
question = st.chat_input("Ask a dosing question…")
if question is None:
    question = st.session_state.pop("_pending_question", None)

for i, msg in enumerate(messages):
    with st.chat_message(msg["role"]):
        if msg["role"] == "user":
            st.markdown(escape_md(msg["content"]))
        else:
            render_answer(i, msg, latest=question is None and i == len(messages) - 1)

if not messages and question is None:
    st.markdown(
        "Ask a dosing question below, or try one of these. Set a weight in the sidebar for a "
        "patient-specific calculation."
    )
    with st.container(horizontal=True):
        for j, q in enumerate(EXAMPLES):
            st.button(q, key=f"example-{j}", on_click=queue_question, args=(q,))

warming: threading.Thread | None = None
if factory is None:  # retrieval only: never spends a configured LLM's time on a warm-up
    warming = warm_up(assistant, f"{store.mode}:{store.path}:{store.host}:{store.port}")

if question is not None:
    messages.append({"role": "user", "content": question})
    with st.chat_message("user"):
        st.markdown(escape_md(question) if question.strip() else "*(empty question)*")
    with st.chat_message("assistant"):
        msg = answer(question)
        messages.append(msg)
        render_answer(len(messages) - 1, msg, latest=True)
    # Streamlit keeps a chat pinned to its bottom, which leaves the bold first line of a long
    # answer off-screen: bring the new answer's top into view instead.
    st.html(_SCROLL_TO_NEW_ANSWER, unsafe_allow_javascript=True)
