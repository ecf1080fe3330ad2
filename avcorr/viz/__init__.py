"""Visualisation: pictures of what the models see and hear (arrays in, images out; no model or data imports)."""

from .heatmap import (colorize, draw_boxes, localization_frame, overlay_heatmap, peak_location, save_contact_sheet,
                      save_png, to_uint8_hwc, value_range, with_caption, with_colorbar)

__all__ = ["colorize", "draw_boxes", "localization_frame", "overlay_heatmap", "peak_location", "save_contact_sheet",
           "save_png", "to_uint8_hwc", "value_range", "with_caption", "with_colorbar"]
