"""Subprocess entry point: ``python -m bench.worker <module:function> '<json kwargs>'``.

Prints one line ``@@BENCH_RESULT@@{json}``: the function's result dict, ``{"not_available": why}``
when the function raised :class:`bench.measure.NotAvailable` or an ImportError /
NotImplementedError (a system or feature that is not there yet), or ``{"error": ...}``.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
import traceback

from bench.measure import RESULT_MARK, NotAvailable


def main(argv: list[str]) -> int:
    target, raw_kwargs = argv[0], argv[1]
    module_name, _, function_name = target.partition(":")
    logging.basicConfig(level=logging.WARNING)
    try:
        module = importlib.import_module(f"bench.{module_name}")
        result = getattr(module, function_name)(**json.loads(raw_kwargs))
    except NotAvailable as e:
        result = {"not_available": str(e)}
    except (ImportError, NotImplementedError) as e:
        result = {"not_available": f"{type(e).__name__}: {e}"}
    except Exception as e:  # report any failure of the measured system as a row, never crash the suite
        traceback.print_exc()
        result = {"error": f"{type(e).__name__}: {e}"}
    sys.stdout.flush()
    print(RESULT_MARK + json.dumps(result, default=float), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
