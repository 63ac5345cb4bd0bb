"""naslid: few-shot neural architecture search (NAS-LID, LISSNAS) as a Kubeflow pipeline."""

__version__ = "0.1.0"
