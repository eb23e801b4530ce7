"""Old import path of the SynthME figure, kept so existing imports keep working.

The figure now lives in :mod:`fmanet_hf.data.synthetic.figure`; import
:func:`~fmanet_hf.data.synthetic.render_synthme_figure` from
:mod:`fmanet_hf.data.synthetic`.
"""

from .synthetic.figure import FLOW_METHODS, compute_flow, flow_to_rgb, match_intensity, render_synthme_figure

__all__ = ["FLOW_METHODS", "compute_flow", "flow_to_rgb", "match_intensity", "render_synthme_figure"]
