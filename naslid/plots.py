"""The figures LISSNAS writes, under their former module name: they live in
:mod:`naslid.report.plots`, which the LISSNAS code and its tests will import directly."""

from naslid.report.plots import error_edf, flops_vs_accuracy

__all__ = ["error_edf", "flops_vs_accuracy"]
