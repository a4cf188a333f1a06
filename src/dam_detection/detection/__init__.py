"""Detection shared by ``train`` and ``segment``: heatmap peaks, one-to-one matching of
detections to known dams, and the choice of the detection threshold on validation patches.
"""
