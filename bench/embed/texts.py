#!/usr/bin/env python3
"""texts.py - the deterministic workload of bench/run embed.

Writes SHORT texts (one a line; about 12 tokens each with [CLS] and [SEP],
like one observation of a memory) and LONG texts (paragraphs of 150-250
tokens, and two of 600+ that both models must cut) built from fixed word
lists with a fixed-seed generator of its own, so every run and every side
gets the same texts.  Standard library only.

Usage: texts.py SHORT_OUT LONG_OUT [N_SHORT] [N_LONG]
"""
import sys

NAMES = ["Alice", "Bruno", "Chen", "Dmitri", "Elena", "Farah", "Gustav", "Hana", "Ivan", "Jonas",
         "Keiko", "Liam", "Maria", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tomas"]
VERBS = ["repaired", "painted", "sold", "borrowed", "photographed", "cleaned", "designed", "moved",
         "tested", "ordered", "inspected", "described", "carried", "replaced", "measured", "found"]
ADJS = ["old", "blue", "broken", "heavy", "small", "wooden", "new", "noisy", "quiet", "shiny"]
NOUNS = ["bicycle", "printer", "garden fence", "laptop", "kitchen table", "boat", "guitar",
         "server rack", "coffee machine", "window", "bridge model", "telescope", "sofa", "van"]
PLACES = ["near the river", "at the office", "in the garage", "behind the school", "at the market",
          "in the lab", "on the roof", "at the station", "in the park", "downtown"]
TIMES = ["on Tuesday", "last week", "yesterday", "in March", "this morning", "after lunch",
         "before the meeting", "at night", "on the weekend", "in 2024"]


class Lcg:
    """Numerical Recipes' 32-bit LCG: identical on every Python."""

    def __init__(self, seed):
        self.s = seed & 0xFFFFFFFF

    def pick(self, seq):
        self.s = (self.s * 1664525 + 1013904223) & 0xFFFFFFFF
        return seq[(self.s >> 8) % len(seq)]


def sentence(r):
    return "%s %s the %s %s %s %s." % (r.pick(NAMES), r.pick(VERBS), r.pick(ADJS), r.pick(NOUNS),
                                       r.pick(PLACES), r.pick(TIMES))


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    n_short = int(argv[3]) if len(argv) > 3 else 512
    n_long = int(argv[4]) if len(argv) > 4 else 16
    r = Lcg(12)
    with open(argv[1], "w") as f:
        for _ in range(n_short):
            f.write(sentence(r) + "\n")
    with open(argv[2], "w") as f:
        for i in range(n_long):
            # 12-18 sentences (~150-250 tokens); the last two: 50 (~650)
            n = 50 if i >= n_long - 2 else 12 + i % 7
            f.write(" ".join(sentence(r) for _ in range(n)) + "\n")


if __name__ == "__main__":
    main(sys.argv)
