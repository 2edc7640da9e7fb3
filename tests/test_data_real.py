"""The real FER-2013 file from ../shared: row and class counts as in its README."""
import os

import numpy as np
import pytest

from fer_app.data.load import EMOTIONS, load_dataset, select_split, split_dataset

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_DATA = os.path.join(REPO, "..", "shared", "data", "fer2013", "fer2013.csv.gz")

# from ../shared/data/README.md, in EMOTIONS order
README_COUNTS = {"Training": [3995, 436, 4097, 7215, 4830, 3170, 4964],
                 "PublicTest": [467, 56, 496, 895, 653, 415, 607]}


@pytest.mark.skipif(not os.path.exists(REAL_DATA),
                    reason=f"real FER-2013 file absent: {os.path.normpath(REAL_DATA)}")
def test_real_file_class_counts_match_the_readme():
    ds = load_dataset(REAL_DATA, cache=False)
    assert ds.class_names == EMOTIONS and ds.skipped == 0
    assert len(ds) == 28707 + 3589
    for split, counts in README_COUNTS.items():
        np.testing.assert_array_equal(select_split(ds, split).class_counts(), counts)
    train, val = split_dataset(ds)
    assert len(train) == 28707 and len(val) == 3589
    assert 100 < ds.images.mean() < 150 and ds.images.std() > 40  # real faces, not zeros
