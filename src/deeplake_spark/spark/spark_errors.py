"""The deeplake_spark error inside a Spark error, for either data source.

Errors of a Spark query reach Python as PySpark exceptions (``AnalysisException``,
``IllegalArgumentException``, ``Py4JJavaError``, ``PythonException``...), whichever source raised
them. Both sources name the deeplake_spark error class in the error text the same way: the Python
source's traceback ends with ``deeplake_spark.errors.VersionNotFound: <message>``, and the JVM source
(``deeplake-jvm``) starts its messages with that same text. So one check serves both::

    from deeplake_spark.errors import VersionNotFound
    from deeplake_spark.spark.spark_errors import deeplake_errors

    with deeplake_errors():                        # re-raises as the deeplake_spark class
        spark.read.format("deeplake").option("versionAsOf", 99).load(path).collect()
    # -> VersionNotFound: /data/pets: version 99 does not exist (versions 0..3)

``deeplake_error(e)`` returns that error object (or None) without raising.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from deeplake_spark import errors

_NAMED = re.compile(r"deeplake_spark\.errors\.([A-Za-z_][A-Za-z0-9_]*): ([^\n]*)")


def deeplake_error(exc: BaseException) -> errors.DeepLakeSparkError | None:
    """The deeplake_spark error ``exc`` carries: ``exc`` itself, or one named in its text; else None.

    The last error named in the text wins (a Python traceback ends with the error raised; a JVM
    error's causes repeat the same message). The object is of the named class, with its message.
    """
    if isinstance(exc, errors.DeepLakeSparkError):
        return exc
    found = None
    for name, message in _NAMED.findall(str(exc)):
        cls = getattr(errors, name, None)
        if isinstance(cls, type) and issubclass(cls, errors.DeepLakeSparkError):
            found = (cls, message)
    if found is None:
        return None
    cls, message = found
    return cls(message.strip())


@contextlib.contextmanager
def deeplake_errors() -> Iterator[None]:
    """Re-raise an exception that carries a deeplake_spark error as that error (``from`` the original)."""
    try:
        yield
    except errors.DeepLakeSparkError:
        raise
    except Exception as e:
        err = deeplake_error(e)
        if err is None:
            raise
        raise err from e
