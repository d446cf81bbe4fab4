"""`adversarial`: the decoder's GAN stage (kdtts.distill.adversarial), on a student or a student vocoder."""
from __future__ import annotations

import argparse
import json

from kdtts.cli.common import add_run_arguments, read_config


def add_arguments(p: argparse.ArgumentParser, argv: list[str]) -> None:
    from kdtts.distill.adversarial import AdversarialConfig

    add_run_arguments(p, AdversarialConfig)


def run(args: argparse.Namespace) -> None:
    from kdtts.distill.adversarial import AdversarialConfig, adversarial

    out = adversarial(read_config(AdversarialConfig, args), args.out, resume=args.resume)
    print(json.dumps({"student": str(out)}))
