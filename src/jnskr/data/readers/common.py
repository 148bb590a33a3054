"""Kept for code that imports the parsing helpers from here; they live in `jnskr.data.parse`."""

from jnskr.data.parse import (  # noqa: F401
    DEFAULT_MAX_ID,
    IntTokens,
    build_kg,
    check_file,
    check_utf8,
    decode_lines,
    dense_ids,
    file_problem,
    is_decimal,
    line_of,
    parse_int_lines,
    parse_triples,
    present,
    read_bytes,
    sorted_ids,
    unique_sorted,
)
