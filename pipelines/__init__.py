"""The Kubeflow pipeline definition (compiled to `ufvideo_pipeline.yaml`); see README.md here."""
