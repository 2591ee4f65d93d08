"""The benchmark questions: varied in drug, intent and phrasing, so the stage split reflects a
mix of dosing, monitoring, pharmacogenomic, interaction and follow-up style questions."""

from __future__ import annotations

__all__ = ["QUESTIONS", "pick_questions"]

QUESTIONS: tuple[str, ...] = (
    "What is the azathioprine maintenance dose in lupus nephritis?",
    "Azathioprine dose for autoimmune hepatitis maintenance?",
    "How should azathioprine be dosed in a TPMT poor metabolizer?",
    "What dose of azathioprine for an intermediate TPMT phenotype?",
    "Which blood tests are needed when starting azathioprine and how often?",
    "Can azathioprine be used in pregnancy?",
    "What happens if azathioprine is combined with allopurinol?",
    "Imuran starting dose after kidney transplant?",
    "What is the usual mycophenolate mofetil dose for lupus nephritis induction?",
    "Low-dose IV cyclophosphamide regimen for lupus nephritis (Euro-Lupus)?",
    "Prednisone dose for autoimmune hepatitis induction?",
    "How long should maintenance therapy continue in lupus nephritis?",
    "What 6-TGN level is therapeutic for thiopurines?",
    "NUDT15 poor metabolizer mercaptopurine dose?",
    "azathioprine dosing in rheumatoid arthritis mg/kg",
    "Methotrexate weekly dose in rheumatoid arthritis?",
    "What is the maximum daily dose of azathioprine?",
    "When should azathioprine be stopped for leukopenia?",
    "Hydroxychloroquine dose in lupus?",
    "AZA dose in Crohn disease?",
)


def pick_questions(n: int) -> tuple[str, ...]:
    """The first ``n`` questions (all when n exceeds the list)."""
    return QUESTIONS[: max(1, n)]
