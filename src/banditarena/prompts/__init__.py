"""banditarena.prompts: prompt pools, dedup, embeddings, clustering and offline test sets (WizardArena).

Light to import: sentence-transformers, scikit-learn and pandas load only inside the functions that use them.
"""

from banditarena.prompts.cluster import ClusterResult, assign_clusters, kmeans
from banditarena.prompts.dedup import DedupResult, MinHasher, dedup_prompts, lsh_params, near_duplicate_pairs
from banditarena.prompts.difficulty import DEFAULT_RUBRIC, RubricScorer  # after testset: it scores for it
from banditarena.prompts.embed import (
    Embedder,
    HashEmbedder,
    StaticEmbedder,
    TextEncoder,
    make_embedder,
    prompt_texts,
)
from banditarena.prompts.loaders import (
    NAMED_SETS,
    LoadResult,
    load_prompts,
    load_prompts_report,
    named_sets,
    save_prompts,
)
from banditarena.prompts.pool import attach_references, load_pool
from banditarena.prompts.testset import (
    Contaminated,
    DecontamResult,
    DifficultyScorer,
    DifficultyScores,
    MarginScorer,
    TestSet,
    build_testset,
    decontaminate,
    nearest_neighbours,
    offline_diverse,
    offline_hard,
    save_testset,
    score_difficulty,
)

__all__ = [
    "DEFAULT_RUBRIC",
    "NAMED_SETS",
    "ClusterResult",
    "Contaminated",
    "DecontamResult",
    "DedupResult",
    "DifficultyScorer",
    "DifficultyScores",
    "Embedder",
    "HashEmbedder",
    "LoadResult",
    "MarginScorer",
    "MinHasher",
    "RubricScorer",
    "StaticEmbedder",
    "TestSet",
    "TextEncoder",
    "assign_clusters",
    "attach_references",
    "build_testset",
    "decontaminate",
    "dedup_prompts",
    "kmeans",
    "load_pool",
    "load_prompts",
    "load_prompts_report",
    "lsh_params",
    "make_embedder",
    "named_sets",
    "near_duplicate_pairs",
    "nearest_neighbours",
    "offline_diverse",
    "offline_hard",
    "prompt_texts",
    "save_prompts",
    "save_testset",
    "score_difficulty",
]
