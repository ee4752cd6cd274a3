# Rasterised annotations (issue: annotations -> datasets). Defines label rules.
