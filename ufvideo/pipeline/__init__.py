"""Orchestration glue: the pipeline's steps over a shared workspace (`steps`), the multi-node training launcher
(`launch`: TrainJob / PyTorchJob through the kubernetes client) and the `ufvideo pipeline ...` commands (`commands`).
"""
