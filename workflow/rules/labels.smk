# Rasterised annotations. Input functions: common.smk.
