"""From a trained run to results: video analysis, post-processing (filters, smoothing),
outlier frames, frame suggestions, quality reports and model export.
"""
