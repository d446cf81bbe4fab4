"""Optional evaluators (pesq, pystoi, pyworld, pysptk, speechmos, pocketsphinx, pyloudnorm): a clear message when one is missing."""
from __future__ import annotations

import importlib
from types import ModuleType

# import name -> (pip package, what it measures)
EVALUATORS = {
    "pesq": ("pesq", "PESQ-WB"),
    "pystoi": ("pystoi", "STOI"),
    "pyworld": ("pyworld", "MCD and F0 RMSE"),
    "pysptk": ("pysptk", "MCD (mel-cepstra)"),
    "speechmos": ("speechmos", "DNSMOS"),
    "pocketsphinx": ("pocketsphinx", "WER/CER"),
    "pyloudnorm": ("pyloudnorm", "loudness (BS.1770)"),
}


class MissingEvaluator(RuntimeError):
    """An optional evaluator is not installed (or its bundled model files are missing)."""


def require(name: str) -> ModuleType:
    """Import an optional evaluator or raise MissingEvaluator saying what to install and what is lost."""
    package, metric = EVALUATORS.get(name, (name, name))
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise MissingEvaluator(
            f"{metric} needs the '{package}' package, which is not installed ({error}). "
            f"Install the evaluation extras with `pip install -r requirements.txt` "
            f"(or `pip install {package}`); the other metrics still run.") from error
