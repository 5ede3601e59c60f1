# Golden case folders (relative to $PICTOR_GOLDEN) checked by `pictor dev conform`.
pictor_golden_case(sd/schedulers)
