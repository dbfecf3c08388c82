"""`poison`: protect any folder of pictures with one generator forward pass per image.

The output mirrors the input tree. Originals are only ever opened for reading; the output
folder must not be, or lie inside, the input folder (nor contain it). Each output file is
written atomically, and a line per finished file is appended to ``manifest.partial.jsonl``
so an interrupted run resumes where it stopped. The final ``manifest.json`` is written
atomically at the end.

The guarantee: the perturbation is expressed in 8-bit levels, clipped to
L = floor(eps * 255), added to the decoded original and *rounded*; the encoded file is then
decoded again and every pixel compared with the original before the file is written. A pixel
that moved more than L levels is a :class:`GuaranteeError`, never a warning.

The package, by responsibility: ``config`` (what is asked and reported), ``discover`` (which
pictures, output names, classes), ``tiling`` (the perturbation of a batch and the budget),
``record`` (resume record, manifests, lock, shards), ``pipeline`` (the streaming run,
:func:`protect_folder`).
"""

from .config import SUFFIX, PoisonConfig, PoisonResult
from .discover import check_output_location, class_of, header_pixels, output_names
from .pipeline import protect_folder
from .record import MANIFEST, PARTIAL, OutputLock, made_by_unlearnable, merge_shards, parse_shard
from .tiling import apply_budget, batch_keys, compare, perturb_at, perturbation, resolve_work_size

__all__ = ["MANIFEST", "PARTIAL", "SUFFIX", "OutputLock", "PoisonConfig", "PoisonResult", "apply_budget", "batch_keys", "compare",
           "check_output_location", "class_of", "header_pixels", "made_by_unlearnable", "merge_shards",
           "output_names", "parse_shard", "perturb_at", "perturbation", "protect_folder", "resolve_work_size"]
