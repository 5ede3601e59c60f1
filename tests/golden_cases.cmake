# Golden case folders (relative to $PICTOR_GOLDEN) checked by `pictor dev conform`.
