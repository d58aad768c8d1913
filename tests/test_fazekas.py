"""Fazekas grades from regions dsegs of known geometry: linings, halos, extensions and deep foci."""

import numpy as np
import pytest
from phantoms import ellipsoid

from bids_deepwmh.core.fazekas import describe, fazekas_grades
from bids_deepwmh.core.images import distance_to_surface

SHAPE = (120, 120, 90)  # 1 mm voxels
VENTRICLE = ellipsoid(SHAPE, (60, 60, 45), (6, 20, 10))
WHITE_MATTER = ellipsoid(SHAPE, (60, 60, 45), (50, 55, 40))


def _regions(periventricular=None, deep=None):
    regions = np.zeros(SHAPE, np.uint8)
    regions[VENTRICLE] = 3
    if periventricular is not None:
        regions[periventricular & ~VENTRICLE] = 1
    if deep is not None:
        regions[deep] = 2
    return regions


def _shell(thickness_mm, front_only=False):
    """WMH lining the ventricle up to ``thickness_mm`` from its wall (a cap at its front end only)."""
    shell = (distance_to_surface(VENTRICLE, (1.0, 1.0, 1.0)) <= thickness_mm) & ~VENTRICLE
    if front_only:
        shell &= np.indices(SHAPE)[1] >= 76
    return shell


@pytest.mark.parametrize(("thickness", "expected"), [(2, 1), (7, 2), (14, 3)])
def test_periventricular_grade_follows_how_far_the_lining_reaches(thickness, expected):
    grades = fazekas_grades(_regions(periventricular=_shell(thickness)), WHITE_MATTER, (1.0, 1.0, 1.0))
    assert grades.periventricular == expected
    assert grades.periventricular_extent_mm == pytest.approx(thickness, abs=1.5)
    assert grades.deep == 0


def test_caps_alone_are_grade_one_and_nothing_is_grade_zero():
    assert fazekas_grades(_regions(periventricular=_shell(3, front_only=True)), WHITE_MATTER,
                          (1.0, 1.0, 1.0)).periventricular == 1
    assert fazekas_grades(_regions(), WHITE_MATTER, (1.0, 1.0, 1.0)) == fazekas_grades(
        np.zeros(SHAPE, np.uint8), WHITE_MATTER, (1.0, 1.0, 1.0))
    assert fazekas_grades(_regions(), WHITE_MATTER, (1.0, 1.0, 1.0)).periventricular == 0


@pytest.mark.parametrize(("diameter", "expected"), [(2, 0), (6, 1), (14, 2), (26, 3)])
def test_deep_grade_follows_the_largest_deep_lesion(diameter, expected):
    focus = ellipsoid(SHAPE, (25, 60, 45), (diameter / 2 - 0.5, diameter / 2 - 0.5, 3))
    grades = fazekas_grades(_regions(deep=focus), WHITE_MATTER, (1.0, 1.0, 1.0))
    assert grades.deep == expected
    if expected:
        assert grades.deep_largest_mm == pytest.approx(diameter, abs=1.0)
    assert grades.periventricular == 0


def test_a_deep_lesion_outside_the_white_matter_is_not_read():
    focus = ellipsoid(SHAPE, (25, 60, 45), (7, 7, 3))
    grades = fazekas_grades(_regions(deep=focus), WHITE_MATTER & ~focus, (1.0, 1.0, 1.0))
    assert grades.deep == 0


def test_thick_slices_read_as_thin_ones():
    """The same lining sampled on 6 mm slices: no half slice added to how far it reaches."""
    regions = _regions(periventricular=_shell(7))
    thick = regions[:, :, 3::6]  # every sixth 1 mm slice: 1 x 1 x 6 mm voxels
    on_thick = fazekas_grades(thick, WHITE_MATTER[:, :, 3::6], (1.0, 1.0, 6.0))
    assert on_thick.periventricular == fazekas_grades(regions, WHITE_MATTER, (1.0, 1.0, 1.0)).periventricular == 2


def test_the_report_sentences_name_grade_words_and_measures():
    grades = fazekas_grades(_regions(periventricular=_shell(7), deep=ellipsoid(SHAPE, (25, 60, 45), (2.5, 2.5, 2))),
                            WHITE_MATTER, (1.0, 1.0, 1.0))
    columns = {key: str(value) for key, value in grades.columns().items()}  # as read back from the TSV
    periventricular, deep = describe(columns)
    assert periventricular == (f"periventricular 2: a smooth halo, up to {float(columns['periventricular_extent_mm']):.0f} mm "
                               "from the ventricles")
    assert deep == "deep 1: punctate foci, the largest 6 mm across"
