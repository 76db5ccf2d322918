"""Writes a model file again with another weight storage (float32, float16, int8 or int4).

The card is kept as it is; only the stored weights change (see
:mod:`uniadrs_engine.model.weight_storage`). Used by experiments 15 and 33 in docs/DEFAULT_MODEL.md.

Usage:
    .venv/bin/python scripts/store_weights.py MODEL OUTPUT --weights int8
"""

from __future__ import annotations

import argparse

from uniadrs_engine.model.model_file import load_model, save_model
from uniadrs_engine.model.weight_storage import WEIGHT_STORAGES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="model file (or 'default')")
    parser.add_argument("output", help="model file to write")
    parser.add_argument("--weights", choices=WEIGHT_STORAGES, required=True)
    args = parser.parse_args()
    loaded = load_model(args.model)
    save_model(args.output, loaded.network, loaded.card, weight_storage=args.weights)
    print(f"{args.output}: {load_model(args.output).card.summary()}")


if __name__ == "__main__":
    main()
