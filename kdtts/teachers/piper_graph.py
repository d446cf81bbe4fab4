"""Module-wise access to a Piper (VITS) ONNX voice without touching its weights.

A Piper graph maps phoneme ids to audio in one piece. We find two tensors by graph structure:

* durations: the output of the graph's single ``Ceil`` node (VITS rounds predicted durations up);
* ``z``: the earliest tensor that *every* path from the inputs to the audio passes through
  (the output's first dominator). In VITS that is ``z * y_mask`` after the flow, i.e. the
  decoder's input. Dominators are found in one topological pass.

and cut the graph there into three sub-graphs (durations; the front: latent z given durations; decoder).
Cutting takes seconds and imports onnx, so `load_graphs` keeps the cut sub-graphs on disk (kdtts.cache),
keyed by the voice's content hash: a process that finds them there never imports onnx.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kdtts.cache import cached_folder

if TYPE_CHECKING:
    import onnx

CACHE_KIND = "teacher-graphs-v1"  # bump when the cut or the sub-graphs change: old entries are then ignored
PARTS = ("full", "durations", "front", "decoder")


class TeacherGraphError(RuntimeError):
    """The voice's ONNX graph lacks a tensor kdtts needs for module-wise access."""


@dataclass(frozen=True)
class GraphCut:
    """Names of the tensors where the teacher graph is cut."""

    inputs: tuple[str, ...]
    audio: str
    durations: str
    z: str


def find_cut(model: onnx.ModelProto) -> GraphCut:
    """Locate the durations and latent tensors by structure; raise TeacherGraphError if absent."""
    graph = model.graph
    weights = {init.name for init in graph.initializer}
    inputs = tuple(i.name for i in graph.input if i.name not in weights)
    if len(graph.output) != 1:
        raise TeacherGraphError(f"expected one audio output, found {[o.name for o in graph.output]}")
    audio = graph.output[0].name

    ceil = [o for node in graph.node if node.op_type == "Ceil" for o in node.output]
    if len(ceil) != 1:
        raise TeacherGraphError(
            f"this voice's graph has {len(ceil)} Ceil nodes; kdtts needs exactly one (the per-phoneme "
            "durations in frames) to read and replace the teacher's durations")

    dominators: dict[str, frozenset[str]] = {name: frozenset([name]) for name in inputs}
    position: dict[str, int] = {}
    for k, node in enumerate(graph.node):  # ONNX requires topological order
        doms = [dominators[i] for i in node.input if i in dominators]
        if not doms:
            continue
        common = frozenset.intersection(*doms)
        for out in node.output:
            dominators[out] = common | {out}
            position[out] = k
    if audio not in dominators:
        raise TeacherGraphError("the audio output does not depend on the graph inputs")
    below_ceil = [t for t in dominators[audio] if t in position and position[t] > position[ceil[0]]]
    if not below_ceil or min(below_ceil, key=position.__getitem__) == audio:
        raise TeacherGraphError(
            "no latent tensor z found: no single tensor after the durations feeds the whole decoder")
    z = min(below_ceil, key=position.__getitem__)
    return GraphCut(inputs=inputs, audio=audio, durations=ceil[0], z=z)


@dataclass
class TeacherGraphs:
    """Sub-graphs, serialized (bytes) or as files in the cache, ready for onnxruntime.InferenceSession."""

    cut: GraphCut
    full: bytes | Path       # inputs -> audio, durations, z
    durations: bytes | Path  # inputs -> durations
    front: bytes | Path      # inputs + durations -> z (the latent)
    decoder: bytes | Path    # z -> audio
    parameters: int = 0          # weights in the whole voice
    decoder_parameters: int = 0  # weights in the decoder sub-graph


def count_parameters(model: onnx.ModelProto) -> int:
    total = 0
    for tensor in model.graph.initializer:
        count = 1
        for dim in tensor.dims:
            count *= dim
        total += count
    return total


def split_graph(model: onnx.ModelProto) -> TeacherGraphs:
    """Cut a Piper voice into module graphs (seconds for a medium voice: `load_graphs` caches them)."""
    from onnx.utils import Extractor

    cut = find_cut(model)
    extractor = Extractor(model)
    decoder = extractor.extract_model([cut.z], [cut.audio])
    return TeacherGraphs(
        cut=cut,
        full=extractor.extract_model(list(cut.inputs), [cut.audio, cut.durations, cut.z]).SerializeToString(),
        durations=extractor.extract_model(list(cut.inputs), [cut.durations]).SerializeToString(),
        front=extractor.extract_model(list(cut.inputs) + [cut.durations], [cut.z]).SerializeToString(),
        decoder=decoder.SerializeToString(),
        parameters=count_parameters(model),
        decoder_parameters=count_parameters(decoder),
    )


def _write_graphs(model_path: Path) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        import onnx
        from google.protobuf.message import DecodeError

        try:
            model = onnx.load(str(model_path))
        except DecodeError as error:
            raise TeacherGraphError(f"{model_path} is not a readable ONNX model ({error})") from None
        graphs = split_graph(model)
        for part in PARTS:
            (folder / f"{part}.onnx").write_bytes(getattr(graphs, part))
        (folder / "cut.json").write_text(json.dumps({"cut": asdict(graphs.cut), "parameters": graphs.parameters,
                                                     "decoder_parameters": graphs.decoder_parameters}, indent=1))
    return build


def load_graphs(model_path: str | Path) -> TeacherGraphs:
    """The voice's sub-graphs as files in the cache, cut on the first call for these voice bytes (keyed by
    the voice's SHA-256, the hash a checkpoint records of its teacher)."""
    folder = cached_folder(CACHE_KIND, model_path, _write_graphs(Path(model_path)), marker="cut.json",
                           algorithm="sha256")
    meta = json.loads((folder / "cut.json").read_text())
    cut = GraphCut(**{**meta["cut"], "inputs": tuple(meta["cut"]["inputs"])})
    return TeacherGraphs(cut, *(folder / f"{part}.onnx" for part in PARTS), parameters=meta["parameters"],
                         decoder_parameters=meta["decoder_parameters"])
