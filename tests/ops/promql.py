"""The metric names a PromQL expression reads (enough of PromQL for our rules and panels)."""

import re

from prometheus_client import CollectorRegistry

KEYWORDS = {
    # aggregations, their modifiers, binary operators and set operators
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset",
    # functions
    "rate", "irate", "increase", "delta", "idelta", "deriv", "histogram_quantile", "abs",
    "absent", "absent_over_time", "vector", "scalar", "clamp_min", "clamp_max", "clamp",
    "label_replace", "label_join", "time", "timestamp", "round", "ceil", "floor", "sort",
    "sort_desc", "changes", "resets", "avg_over_time", "sum_over_time", "max_over_time",
    "min_over_time", "count_over_time", "last_over_time", "predict_linear", "sgn", "exp", "ln",
    "inf", "nan",
}  # fmt: skip

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAMES = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)")


def metric_names(expr: str) -> set[str]:
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub("", text)
    text = re.sub(r"\b\d+(\.\d+)?(e[+-]?\d+)?\b", " ", text)
    return {name for name in _NAMES.findall(text) if name.lower() not in KEYWORDS}


def exposed_names(registry: CollectorRegistry) -> set[str]:
    """The sample names a registry exposes (also for labelled metrics without children)."""
    names: set[str] = set()
    for family in registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}{s}" for s in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names
