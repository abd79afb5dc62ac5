"""Zero-shot attributes against what stores say themselves, where the two overlap.

A product *states* a label when one of the label's taxonomy words appears as whole words in its
title, tags or category ("Navy oxford shirt" states colour navy); products stating two labels of
one attribute are left out (ambiguous). Among stating products:

- coverage: the share that got a confident label at all;
- agreement: the share whose label equals the stated one (unlabelled count as disagreeing).

Like weak labels, this measures agreement with the stores' wording, not truth: a title can say
"navy" for a product photographed on a white background.
"""

from __future__ import annotations

import re
from typing import Any

from catalog.models import ProductAttributes
from search.attributes import ATTRIBUTES, Taxonomy
from search.evaluation.metrics import bootstrap_estimate

FIELDS = ("title", "category", "tags")


def _patterns(taxonomy: Taxonomy, name: str) -> dict[str, re.Pattern]:
    spec = taxonomy.attributes[name]
    return {
        label: re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b", re.I)
        for label, words in spec.labels.items()
    }


def _stated(text: str, patterns: dict[str, re.Pattern]) -> str | None:
    found = [label for label, pattern in patterns.items() if pattern.search(text)]
    return found[0] if len(found) == 1 else None


def evaluate_attributes(
    taxonomy: Taxonomy, *, stores: tuple[str, ...] = (), resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """{attribute: stated/labelled/agree counts, coverage and agreement with 95 % intervals}."""
    rows = ProductAttributes.objects.filter(product__is_active=True)
    if stores:
        rows = rows.filter(product__store__slug__in=stores)
    values = list(
        rows.values_list(*ATTRIBUTES, "product__title", "product__category", "product__tags")
    )
    result: dict[str, Any] = {}
    for i, name in enumerate(ATTRIBUTES):
        if name not in taxonomy.attributes:
            continue
        patterns = _patterns(taxonomy, name)
        agree, covered = [], []
        for row in values:
            tags = row[-1] if isinstance(row[-1], list) else []
            stated = _stated(" ".join([row[-3], row[-2], *map(str, tags)]), patterns)
            if stated is None:
                continue
            covered.append(1.0 if row[i] else 0.0)
            agree.append(1.0 if row[i] == stated else 0.0)
        result[name] = {
            "stated": len(agree),
            "labelled": int(sum(covered)),
            "agree": int(sum(agree)),
            "coverage": bootstrap_estimate(covered, resamples=resamples, seed=seed).as_dict(),
            "agreement": bootstrap_estimate(agree, resamples=resamples, seed=seed).as_dict(),
        }
    return result


def render_attributes(section: dict[str, Any]) -> str:
    lines = [
        "Zero-shot attributes vs the stores' own words (agreement, not truth):",
        f"  {'attribute':<14}{'stated':>8}{'labelled':>10}{'agree':>8}   agreement (95%)",
    ]
    for name, row in section.items():
        est = row["agreement"]
        lines.append(
            f"  {name:<14}{row['stated']:>8}{row['labelled']:>10}{row['agree']:>8}   "
            f"{est['mean']:.3f} ({est['low']:.2f}-{est['high']:.2f})"
        )
    return "\n".join(lines)
