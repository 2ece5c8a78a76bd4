"""Stage check_params: every key of params.yaml is known and every value valid, before anything runs.

It depends on the whole params.yaml, so it runs on every change to it, including a key that no
other stage declares (``dvc exp run -S +model.paddin=c``), and fails naming the key and the closest
valid one.

It is also the gate of the pipeline: it writes ``data/params_checked.json`` and every other stage
depends on that file, so any ``dvc repro``, targeted at one stage or not, runs this check first and
stops at an invalid value in a key the targeted stage never reads (a method's own budget overrides
``budget.batch_size``: without the gate a ``budget.batch_size: -5`` trained that method happily and
was recorded in dvc.lock). The file's content is the same whenever the check passes, so a change to
params.yaml re-runs only the stages whose own params changed.
"""

from __future__ import annotations

import logging

from lifting.io import write_json
from lifting.params_check import check_params
from stages.common import parser, read_params, run

log = logging.getLogger("check_params")


def main(argv=None) -> None:
    cli = parser(__doc__)
    cli.add_argument("--out", help="the gate file every other stage depends on (written only if the check passes)")
    args = cli.parse_args(argv)
    check_params(read_params(args.params))
    if args.out:
        write_json({"params": "every key known, every value valid"}, args.out)
    log.info("%s: every key known, every value valid", args.params)


if __name__ == "__main__":
    run(main)
