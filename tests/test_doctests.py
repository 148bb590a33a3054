"""The examples in the docstrings of `jnskr.ops` run and print what they say."""

import doctest

import jnskr.ops


def test_ops_doctests_pass():
    result = doctest.testmod(jnskr.ops, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5 and result.failed == 0, result
