"""docs/ARCHITECTURE.md names only files and functions that exist."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "ARCHITECTURE.md"
#: Names it gives that belong to other libraries.
EXTERNAL_NAMES = {"ReadAsArray"}  # GDAL's


def _code_spans() -> list:
    return re.findall(r"`([^`]+)`", DOC.read_text(encoding="utf-8"))


def _engine_source() -> str:
    return "\n".join(
        path.read_text(encoding="utf-8") for path in (REPO / "uniadrs_engine").rglob("*.py")
    )


def test_every_path_it_names_exists():
    paths = [
        span.split(" ")[0].rstrip("/")
        for span in _code_spans()
        if re.match(r"(uniadrs_engine|qgis_plugin|configs|scripts|docs)/[\w/.<>-]+$", span)
    ]
    assert len(paths) > 20
    missing = [path for path in paths if "<" not in path and not (REPO / path).exists()]
    assert missing == []


def _named_objects() -> set:
    """Calls (``name(...)``), dotted names (``module.name``), class names and constants."""
    names = set()
    for span in _code_spans():
        match = re.match(r"([A-Za-z_][\w.]*)\(", span) or re.fullmatch(
            r"([a-z_]+\.[A-Za-z_]\w*|[A-Z][a-z]+[A-Z]\w*|[A-Z][A-Z_]{3,})", span
        )
        if match and not span.endswith((".py", ".md", ".yaml")):
            names.add(match.group(1).split(".")[-1])
    return names


def test_every_function_class_or_constant_it_names_is_defined_in_the_engine():
    source = _engine_source()
    names = _named_objects() - EXTERNAL_NAMES
    assert len(names) > 25
    undefined = [
        name
        for name in sorted(names)
        if not re.search(rf"^(\s*(def|class) {name}\b|{name}\s*[:=])", source, re.MULTILINE)
    ]
    assert undefined == []
