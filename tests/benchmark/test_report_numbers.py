"""The report's cell statistics and number formatting, against hand-computed values: mean and
sample standard deviation (ddof = 1) for 0, 1, 2 and more seeds, and the decimals at each
boundary of the magnitude rule (>= 100: 1, >= 1: 2, below: 3)."""

import math

import pytest

from gan_suite.benchmark.report import Cell, _format_number, cell_parts


def test_mean_and_sample_std_by_number_of_seeds():
    assert Cell([]).mean is None and Cell([]).std is None
    assert Cell([4.0]).mean == 4.0 and Cell([4.0]).std is None
    assert Cell([1.0, 3.0]).mean == 2.0 and Cell([1.0, 3.0]).std == pytest.approx(math.sqrt(2.0))
    assert Cell([2.0, 4.0, 9.0]).std == pytest.approx(math.sqrt(((2 - 5) ** 2 + (4 - 5) ** 2 + (9 - 5) ** 2) / 2))


def test_cell_text_shows_the_std_from_two_seeds_on():
    assert cell_parts(Cell([])) is None
    assert cell_parts(Cell([12.345])) == ("12.35", None)
    assert cell_parts(Cell([1.0, 3.0])) == ("2.00", "1.41")
    assert cell_parts(Cell([150.0, 152.0, 154.0])) == ("152.0", "2.0")  # std in the mean's decimals


@pytest.mark.parametrize("value, text", [
    (250.0, "250.0"), (100.0, "100.0"), (99.5, "99.50"), (-100.0, "-100.0"),
    (1.5, "1.50"), (1.0, "1.00"), (0.999, "0.999"), (0.5, "0.500"), (0.0, "0.000"), (-0.5, "-0.500"),
])
def test_decimals_at_each_magnitude_boundary(value, text):
    assert _format_number(value) == text
