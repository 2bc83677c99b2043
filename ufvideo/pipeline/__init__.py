"""Orchestration glue the KFP components call: the pipeline's steps over a shared workspace (`steps`) and the
multi-node training launcher (`launch`: TrainJob / PyTorchJob through the kubernetes client).

The library never imports the KFP face (`components/`, `pipelines/` at the repository root): those import this.
"""
