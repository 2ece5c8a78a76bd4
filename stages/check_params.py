"""Stage check_params: every key of params.yaml is known and every value valid, before anything runs.

It depends on the whole params.yaml, so it runs on every change to it, including a key that no
other stage declares (``dvc exp run -S +model.paddin=c``), and fails naming the key and the closest
valid one. It writes nothing.
"""

from __future__ import annotations

import logging

from lifting.params_check import check_params
from stages.common import parser, read_params, run

log = logging.getLogger("check_params")


def main(argv=None) -> None:
    args = parser(__doc__).parse_args(argv)
    check_params(read_params(args.params))
    log.info("%s: every key known, every value valid", args.params)


if __name__ == "__main__":
    run(main)
