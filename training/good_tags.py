"""TensorBoard tags of the further goods a market trades (certificates), shared by both trainers.

`market/<good>_volume` (units traded per market step), `market/<good>_clearing_price` (volume-
weighted over the window; left out without volume), `market/<good>_ref_price` (mean per step),
read from the market summary (`rec_volume`, `rec_clearing_price`, `rec_ref_price`). A
single-good market has none."""

from __future__ import annotations

import numpy as np


class GoodTags:
    def __init__(self, goods: tuple[str, ...]) -> None:
        self.goods = tuple(goods)
        self.sums = np.zeros((len(self.goods), 3))   # volume, value, reference price

    def add(self, summary: dict) -> None:
        for i, g in enumerate(self.goods):
            vol = summary[f"{g}_volume"]
            self.sums[i] += (vol, vol * summary[f"{g}_clearing_price"], summary[f"{g}_ref_price"])

    def pop(self, n: int) -> dict[str, float]:
        """Tags over the `n` market steps added since the last pop; resets the sums."""
        out: dict[str, float] = {}
        for i, g in enumerate(self.goods):
            vol, value, ref = self.sums[i]
            out[f"market/{g}_volume"] = vol / n
            out[f"market/{g}_ref_price"] = ref / n
            if vol > 0:
                out[f"market/{g}_clearing_price"] = value / vol
        self.sums[:] = 0.0
        return out
