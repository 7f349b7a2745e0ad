"""spark_session()'s local sizing of delta-spark settings (the master string parsing it relies on)."""
import os

import pytest

from deeplake_spark.spark.session import local_cores


@pytest.mark.parametrize(("master", "cores"), [
    ("local", 1), ("local[3]", 3), ("local[2,4]", 2), (" local[1] ", 1),
    ("spark://host:7077", None), ("local-cluster[2,1,1024]", None), ("yarn", None), ("local[0]", None),
])
def test_local_cores(master, cores):
    assert local_cores(master) == cores


def test_local_star_is_the_machine():
    assert local_cores("local[*]") == (os.cpu_count() or 1)
