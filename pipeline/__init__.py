"""buurtlens: qualitative analysis of Dutch conversation transcripts."""

from pipeline.cpu import use_avx2_code

use_avx2_code()  # before any stage loads NumPy: the same results on AVX2 and AVX-512 CPUs

# Loaders for notebooks (`from pipeline import load_prevalence`), imported on first use so that
# importing any pipeline module stays free of work.
_LOADERS = (
    "load_turns",
    "load_tags",
    "load_evidence",
    "load_codebook_file",
    "load_table",
    "load_overview",
    "load_prevalence",
    "load_prevalence_by_role",
    "load_cooccurrence",
    "load_prevalence_change",
    "load_quotes",
    "project_paths",
)
__all__ = list(_LOADERS)


def __getattr__(name: str) -> object:
    """Resolve the loaders of `pipeline.data` lazily."""
    if name in _LOADERS:
        from pipeline import data

        return getattr(data, name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
