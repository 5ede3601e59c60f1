# Golden case folders (relative to $PICTOR_GOLDEN) checked by `pictor dev conform`.
pictor_golden_case(sd/sd1/text_encoder)
pictor_golden_case(sd/sd2/text_encoder)
pictor_golden_case(sd/sd1/tokenizer)
pictor_golden_case(sd/sd1/vae)
pictor_golden_case(sd/taesd)
pictor_golden_case(vlm/llama_tied)
pictor_golden_case(vlm/llama_untied)
