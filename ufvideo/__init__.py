"""ufvideo: training and evaluation workflow for UFVideo-class video LLMs.

All logic lives in this package; the CLI, DVC stages and KFP components are thin faces over it.
"""

__version__ = "0.1.0"
