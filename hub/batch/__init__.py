"""``hub run MODEL --input FILE --output OUT.jsonl``: batch inference over large input files.

The input (one input per line, or JSONL: a JSON string or an object with an ``input`` field per
line) is cut into fixed chunks of lines. Each finished chunk is written atomically as a part
file in a work directory beside OUT (``OUT.parts/``, with a ``manifest.json`` naming the input,
model and options); a rerun with ``--resume`` skips the chunks already written. ``--nproc N``
runs N worker processes here; ``--shard K/N`` makes this process do every N-th chunk starting at
K, for running on many machines over a shared directory. Once every chunk is written, the parts
are merged in input order into OUT (one JSON object per input line: ``line``, ``input``, and
``result`` or ``error``), atomically, and the work directory is removed.
"""
